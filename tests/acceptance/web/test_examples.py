"""The shipped example templates (examples/templates/) through the page, as the README
shows them: the gallery, python-service's form with entity suggestions, its review, the
finished task whose repository (on the server's disk) is a `git clone` command that
works, and the template editor. Its screenshots are the README's."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import REPO, Server, shot, start_server

pytestmark = pytest.mark.browser

EXAMPLES = REPO / "examples" / "templates"
assert EXAMPLES.is_dir(), EXAMPLES  # a wrong path would make the gallery count 0 == 0
PEOPLE = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: platform, title: Platform team}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: payments, title: Payments}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: guest}
spec: {profile: {displayName: You}, memberOf: [platform]}
"""


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("web-examples")
    people = workdir / "catalog-info.yaml"
    people.write_text(PEOPLE, encoding="utf-8")
    srv = start_server(workdir, config={"entities": [str(people)]}, templates=EXAMPLES)
    yield srv
    srv.stop()


def test_python_service_from_the_gallery_to_a_clone(
    page: Page, examples: Server, tmp_path: Path
) -> None:
    page.goto(f"{examples.url}/create")
    cards = page.locator(".template-card")
    expect(cards).to_have_count(len(list(EXAMPLES.glob("*/template.yaml"))))
    expect(cards.first.locator("h2")).to_have_text("Python service")  # recommended first
    shot(page, "example-gallery")

    cards.first.get_by_role("link", name="Choose Python service").click()
    name = page.get_by_label("Name", exact=True)
    name.fill("Billing API")
    expect(page.locator(".field", has=name).locator(".field-error")).to_contain_text(
        "Lowercase letters, digits and dashes"
    )
    owner = page.get_by_label("Owner", exact=True)
    expect(page.locator(f"#{owner.get_attribute('list')} option")).to_have_count(3)
    shot(page, "example-form-page-1-errors")
    name.fill("billing-api")
    owner.fill("group:default/payments")
    page.get_by_role("button", name="Add Tags").click()
    page.get_by_label("Tag 2", exact=True).fill("billing")
    shot(page, "example-form-page-1")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Owner", exact=True).fill("acme")
    page.get_by_label("Repository", exact=True).fill("billing-api")
    shot(page, "example-form-page-2")
    page.get_by_role("button", name="Next").click()  # the secrets page: empty is fine
    page.get_by_role("button", name="Review").click()
    expect(page.locator("main")).to_contain_text("github.com/acme/billing-api")
    shot(page, "example-form-review")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
    command = page.locator(".output code.clone-command")
    expect(command).to_have_text(re.compile(r"^git clone -b main /\S+/billing-api\.git$"))
    expect(page.locator(".output-text .markdown code").first).to_contain_text("git clone")
    shot(page, "example-task-finished")

    clone = command.inner_text()
    target = tmp_path / "billing-api"
    subprocess.run([*clone.split(), str(target)], check=True, capture_output=True)
    assert (target / "pyproject.toml").is_file() and (target / "Dockerfile").is_file()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    expect(page.locator("td[data-label=Result] code").first).to_have_text(clone)
    shot(page, "example-task-list")


def test_the_editor_on_an_example(page: Page, examples: Server) -> None:
    page.goto(f"{examples.url}/edit?template=template:default/hello-world")
    expect(page.get_by_label("template.yaml")).to_have_value(re.compile("name: hello-world"))
    expect(page.get_by_role("list", name="Problems")).to_contain_text("No problems")
    preview = page.locator("#editor-preview")
    expect(preview.get_by_label("Name", exact=True)).to_have_value("world")
    preview.get_by_role("button", name="Review").click()
    preview.get_by_role("button", name="Dry run").click()
    expect(page.get_by_role("log", name="Dry-run log")).to_contain_text("Hello, world!")
    shot(page, "editor")
