"""The admin page in a real Chromium: the queue, a worker's limit, pause and resume
claiming, bulk cancel by filter; a signed-in user who is not an admin gets the
API's refusal and no Admin link."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import (
    PHONE,
    PageErrors,
    Server,
    assert_labelled,
    new_context,
    shot,
    signed_in,
    start_server,
    watch,
)

pytestmark = pytest.mark.browser

TOKENS = {
    "root": {"user": "user:default/root", "admin": True},
    "alice": {"user": "user:default/alice", "admin": False},
}


def token_of(who: str) -> str:
    return f"admin-page-token-{who}"


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = {
        "auth": {
            "tokens": [
                {"sha256": hashlib.sha256(token_of(who).encode()).hexdigest(), **identity}
                for who, identity in TOKENS.items()
            ]
        },
        "concurrency": 8,
        "poll_interval": 0.2,
        "webhooks": [
            {
                "url": "https://hooks.example.com/x?token=t",
                "secret_env": "NONE",
                "events": ["failed"],
            }
        ],
    }
    srv = start_server(tmp_path_factory.mktemp("admin-server"), config=config)
    yield srv
    srv.stop()


@pytest.fixture
def root(browser: Browser) -> Iterator[Page]:
    yield from signed_in(browser, token_of("root"))


@pytest.fixture
def alice(browser: Browser) -> Iterator[Page]:
    yield from signed_in(browser, token_of("alice"))


def api(server: Server, who: str) -> httpx.Client:
    client = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token_of(who)}"}, timeout=30
    )
    server.clients.append(client)
    return client


def create(client: httpx.Client, template: str) -> str:
    made = client.post(
        "/api/scaffolder/v2/tasks", json={"templateRef": f"template:default/{template}"}
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def status_of(client: httpx.Client, task_id: str) -> str:
    return str(client.get(f"/api/scaffolder/v2/tasks/{task_id}").json()["status"])


def until(predicate: object, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_the_admin_page_steers_the_cluster(root: Page, admin_server: Server) -> None:
    client = api(admin_server, "root")
    root.goto(f"{admin_server.url}/admin")
    expect(root.get_by_role("heading", name="Admin", level=1)).to_be_visible()
    expect(root.get_by_role("link", name="Admin")).to_be_visible()
    expect(root.locator("[data-state=running]")).to_have_text("Running: workers claim tasks.")
    workers = root.locator("#workers-table tbody tr")
    expect(workers).to_have_count(1)
    expect(workers.first.locator("td[data-label=Running]")).to_have_text(re.compile(r" of 8$"))
    # the webhook is named without its URL's query
    expect(root.locator(".admin-hooks")).to_contain_text("https://hooks.example.com/x — failed")
    expect(root.locator(".admin-hooks")).not_to_contain_text("token=t")
    assert_labelled(root)

    # a worker's limit, set from the page, lands in the database
    limit = workers.first.get_by_role("spinbutton")
    limit.fill("5")
    workers.first.get_by_role("button", name=re.compile("Set the limit")).click()
    expect(root.locator(".admin-message")).to_contain_text("is now 5")
    (worker,) = client.get("/api/scaffolder/v2/workers").json()
    assert worker["limit"] == 5
    expect(workers.first.locator("td[data-label=Running]")).to_have_text(re.compile(r" of 5$"))

    # pause: a new task stays open; resume: it runs
    root.get_by_label("Reason (optional)").fill("database upgrade")
    root.get_by_role("button", name="Pause claiming").click()
    expect(root.locator("[data-state=paused]")).to_contain_text("database upgrade")
    expect(root.locator("section[aria-labelledby=pause-title]")).not_to_contain_text("null")
    task = create(client, "chatty-log")
    expect(root.locator("[data-stat=claimable] dd")).to_have_text("1")
    assert status_of(client, task) == "open"
    shot(root, "admin")
    root.get_by_role("button", name="Resume claiming").click()
    expect(root.locator("[data-state=running]")).to_be_visible()
    until(lambda: status_of(client, task) == "completed")

    # bulk cancel by template: preview, then apply
    waits = [create(client, "wait-a-minute") for _ in range(2)]
    root.get_by_label("Template").fill("template:default/wait-a-minute")
    root.get_by_label("Created before").fill("2001-01-01T00:00")
    root.get_by_role("button", name="Preview").click()
    expect(root.locator(".bulk-result")).to_contain_text("0 task(s) match.")
    root.get_by_label("Created before").fill("")
    root.get_by_role("button", name="Preview").click()
    expect(root.locator(".bulk-result")).to_contain_text("2 task(s) match.")
    assert {status_of(client, t) for t in waits} <= {"open", "processing"}
    root.get_by_role("button", name="Apply").click()
    expect(root.locator(".bulk-result")).to_contain_text("2 task(s) cancelled.")
    until(lambda: {status_of(client, t) for t in waits} == {"cancelled"})
    actions = [
        e["action"]
        for e in client.get(
            "/api/falsework/v1/audit", params={"actor": "user:default/root"}
        ).json()["entries"]
    ]
    assert {"worker.limit", "admin.pause", "admin.resume", "admin.bulk_cancel"} <= set(actions)


def test_a_user_who_is_not_an_admin_is_refused(alice: Page, admin_server: Server) -> None:
    alice.goto(f"{admin_server.url}/admin")
    expect(alice.get_by_role("alert")).to_contain_text("admins only")
    expect(alice.get_by_role("link", name="Admin")).to_be_hidden()
    expect(alice.locator("#workers-table")).to_have_count(0)
    refused = api(admin_server, "alice").get("/api/falsework/v1/admin/overview")
    assert refused.status_code == 403


def test_the_admin_page_fits_a_phone(browser: Browser, admin_server: Server) -> None:
    context = new_context(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    context.add_init_script(f"sessionStorage.setItem('falsework.token', '{token_of('root')}')")
    errors = PageErrors()
    page = watch(context.new_page(), errors)
    try:
        page.goto(f"{admin_server.url}/admin")
        expect(page.locator("#workers-table tbody tr")).to_have_count(1)
        expect(page.get_by_role("button", name="Pause claiming")).to_be_visible()
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"the page is wider than the screen: {widths}"
        shot(page, "phone-admin")
    finally:
        context.close()
    assert errors.messages == []
