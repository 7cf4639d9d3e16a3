"""The Scaffolds page in a real Chromium: a repository made from v1 of a template kept in
git shows its version, the newest one and "update available"; after an update task, the
update's branch and a link to the task; "Only those behind" lives in the URL."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.sync_api import Page, expect

from support.updates import V3, build_template_repo, git

from .conftest import Server, assert_labelled, start_server

pytestmark = pytest.mark.browser
SERVICE = "template:default/service"


@pytest.fixture
def updates_server(tmp_path: Path) -> Iterator[Server]:
    templates = build_template_repo(tmp_path / "templates")
    templates.checkout("v1")
    srv = start_server(tmp_path / "server", templates=templates.root)
    yield srv
    srv.stop()


def completed(client: httpx.Client, task_id: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        status = client.get(f"/api/scaffolder/v2/tasks/{task_id}").json()["status"]
        if status in ("completed", "failed", "cancelled"):
            assert status == "completed", client.get(
                f"/api/scaffolder/v2/tasks/{task_id}/events"
            ).text
            return
        assert time.monotonic() < deadline, f"task {task_id} stayed {status}"
        time.sleep(0.1)


def test_scaffolds_page(page: Page, updates_server: Server) -> None:
    api = updates_server.client()
    made = api.post(
        "/api/scaffolder/v2/tasks",
        json={
            "templateRef": "template:default/service",
            "values": {"name": "svc", "remote": "svc.git"},
        },
    )
    assert made.status_code == 201, made.text
    completed(api, made.json()["id"])

    page.goto(f"{updates_server.url}/create/scaffolds")
    expect(page).to_have_title("Scaffolds · Falsework")
    row = page.locator("table.scaffolds tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(0)).to_have_text(re.compile(r"/remotes/svc\.git#main$"))
    expect(row.locator("td").nth(1)).to_have_text("template:default/service")
    expect(row.locator("td").nth(2)).to_have_text("v1")
    expect(row.locator("td").nth(3)).to_have_text("v3")
    expect(row.locator("td").nth(4)).to_have_text("update available")
    assert_labelled(page)

    started = api.post(
        "/api/falsework/v1/scaffolds/updates",
        json={"template": "template:default/service", "to": "v2"},
    )
    assert started.status_code == 201, started.text
    task_id = started.json()["tasks"][0]["id"]
    completed(api, task_id)
    page.reload()
    update = row.locator("td").nth(5)
    expect(update).to_contain_text("v2: falsework/update/service-v2")
    expect(update.get_by_role("link", name="task")).to_have_attribute(
        "href", f"/create/tasks/{task_id}"
    )
    expect(row.locator("td").nth(2)).to_have_text("v1")  # until the update is merged

    page.get_by_label("Only those behind").check()
    expect(page).to_have_url(re.compile(r"/create/scaffolds\?outdated=true$"))
    expect(row).to_have_count(1)
    page.get_by_role("link", name="Scaffolds").click()
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Scaffolds")


def test_an_update_asks_for_new_parameters_with_the_old_answers_filled_in(
    page: Page, tmp_path: Path
) -> None:
    """v4 requires `tier`: "Update…" → Start → the form asks for it, the kept answers
    filled in; given, the update starts and its branch's state holds it."""
    templates = build_template_repo(tmp_path / "templates")
    templates.release("v4", V3, extra=True)
    templates.checkout("v1")
    srv = start_server(tmp_path / "server", templates=templates.root)
    try:
        api = srv.client()
        made = api.post(
            "/api/scaffolder/v2/tasks",
            json={"templateRef": SERVICE, "values": {"name": "svc", "remote": "svc.git"}},
        )
        assert made.status_code == 201, made.text
        completed(api, made.json()["id"])
        repository = api.get("/api/falsework/v1/scaffolds").json()["scaffolds"][0]["repository"]

        page.goto(f"{srv.url}/create/scaffolds")
        page.get_by_role("button", name=f"Update {repository}").click()
        form = page.get_by_role("form", name=f"Update {repository}")
        expect(form.get_by_label("Version")).to_have_value("v4")
        form.get_by_role("button", name="Start update").click()
        expect(form.get_by_role("alert")).to_have_text(
            "v4 needs answers: give them and start again."
        )
        expect(form.get_by_label("tier")).to_have_value("")
        expect(form.get_by_label("name")).to_have_value("svc")  # kept, filled in
        expect(form.get_by_label("owner")).to_have_value("team-a")
        assert_labelled(page)
        form.get_by_label("tier").fill("gold")
        form.get_by_role("button", name="Start update").click()
        link = form.get_by_role("link", name="task")
        expect(link).to_have_attribute("href", re.compile(r"^/create/tasks/[0-9a-f-]{36}$"))
        task_id = (link.get_attribute("href") or "").rsplit("/", 1)[1]
        completed(api, task_id)
        remote = repository.rpartition("#")[0]
        state = git(
            "show", "falsework/update/service-v4:.falsework/scaffold.yaml", cwd=Path(remote)
        )
        assert yaml.safe_load(state)["answers"] == {
            "name": "svc",
            "remote": "svc.git",
            "owner": "team-a",
            "tier": "gold",
        }
    finally:
        srv.stop()
