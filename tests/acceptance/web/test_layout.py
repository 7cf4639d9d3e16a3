"""Phone width, dark scheme, keyboard use and the token prompt."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import PHONE, TOKEN, PageErrors, Server, new_context, shot, watch

pytestmark = pytest.mark.browser

PUBLISH_VALUES = {
    "name": "layout-check",
    "owner": "group:default/web",
    "repoUrl": "github.com?owner=acme&repo=layout-check",
    "token": "*" * 12,
}


def _create_publish_task(server: Server) -> str:
    with server.client() as client:
        response = client.post(
            "/api/scaffolder/v2/tasks",
            json={
                "templateRef": "template:default/publish-service",
                "values": PUBLISH_VALUES,
                "secrets": {"token": "layout-secret"},
            },
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is wider than the screen: {widths}"


def test_phone_width(browser: Browser, server: Server) -> None:
    context = new_context(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    errors = PageErrors()
    page = watch(context.new_page(), errors)
    try:
        page.goto(f"{server.url}/create")
        expect(page.get_by_role("heading", name="Publish a service")).to_be_visible()
        _no_horizontal_scroll(page)
        shot(page, "phone-gallery")

        page.get_by_role("link", name="Choose Publish a service").click()
        page.get_by_label("Name", exact=True).fill("phone")
        page.get_by_label("Owner", exact=True).fill("group:default/web")
        page.get_by_role("button", name="Next").click()
        expect(page.get_by_label("Host")).to_be_visible()
        _no_horizontal_scroll(page)
        shot(page, "phone-form")

        task_id = _create_publish_task(server)
        page.goto(f"{server.url}/create/tasks/{task_id}")
        expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
        _no_horizontal_scroll(page)
        shot(page, "phone-task")

        page.goto(f"{server.url}/create/tasks")
        expect(page.locator("table.tasks tbody tr").first).to_be_visible()
        _no_horizontal_scroll(page)
    finally:
        context.close()
    assert errors.messages == []


def _background_luminance(page: Page) -> float:
    rgb = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    r, g, b = (int(x) for x in re.findall(r"\d+", rgb)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_light_and_dark_schemes(browser: Browser, server: Server) -> None:
    task_id = _create_publish_task(server)
    for scheme in ("light", "dark"):
        context = new_context(browser, color_scheme=scheme)
        errors = PageErrors()
        page = watch(context.new_page(), errors)
        try:
            page.goto(f"{server.url}/create")
            expect(page.get_by_role("heading", name="Publish a service")).to_be_visible()
            luminance = _background_luminance(page)
            assert (luminance < 0.2) if scheme == "dark" else (luminance > 0.8), luminance
            if scheme == "dark":
                shot(page, "dark-gallery")
                page.goto(f"{server.url}/create/tasks/{task_id}")
                expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
                shot(page, "dark-task")
        finally:
            context.close()
        assert errors.messages == []


def test_keyboard_only(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/create")
    # from the top of the page, Tab reaches the first template's Choose link
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent") == "Choose":
            break
    else:
        raise AssertionError("Tab never reached a template's Choose link")
    label = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(label.removeprefix("Choose "))
    if label != "Choose Publish a service":
        page.goto(f"{server.url}/create/templates/default/publish-service")

    # every field of the page is reached by Tab, in order, before the buttons
    name = page.get_by_label("Name", exact=True)
    expect(name).to_be_focused()
    page.keyboard.type("keyboard-only")
    reached = []
    for _ in range(10):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate("() => document.activeElement.id || document.activeElement.textContent")
        )
        if reached[-1] == "Next":
            break
    assert reached == ["field-description", "field-owner", "field-replicas", "Next"]
    page.keyboard.press("Shift+Tab")  # Replicas
    page.keyboard.press("Shift+Tab")  # Owner
    expect(page.get_by_label("Owner", exact=True)).to_be_focused()
    page.keyboard.type("group:default/web")
    page.keyboard.press("Enter")  # Enter in a field submits the page: Next
    expect(page.get_by_label("Host")).to_be_visible()
    expect(page.get_by_role("heading", name="Repository", exact=True)).to_be_focused()


def test_token_prompt(browser: Browser, auth_server: Server) -> None:
    context = new_context(browser)
    errors = PageErrors()
    page = watch(context.new_page(), errors)
    try:
        page.goto(f"{auth_server.url}/create")
        dialog = page.get_by_role("dialog", name="Sign in")
        expect(dialog).to_be_visible()
        expect(page.get_by_role("status")).to_be_hidden()  # not local mode
        page.get_by_label("Access token").fill("wrong-token")
        page.keyboard.press("Enter")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_role("alert")).to_have_text("That token was not accepted.")
        shot(page, "token-prompt")
        page.get_by_label("Access token").fill(TOKEN)
        dialog.get_by_role("button", name="Sign in").click()
        expect(dialog).to_have_count(0)
        expect(page.get_by_role("heading", name="Publish a service")).to_be_visible()
        expect(page.locator("#identity")).to_contain_text("user:default/alice")

        # kept for this tab only: not in localStorage, cookies or the URL
        assert page.evaluate("() => sessionStorage.getItem('falsework.token')") == TOKEN
        assert page.evaluate("() => localStorage.length") == 0
        assert context.cookies() == []
        assert TOKEN not in page.url
        page.reload()
        expect(page.get_by_role("heading", name="Publish a service")).to_be_visible()
        expect(page.get_by_role("dialog")).to_have_count(0)

        # the task list offers only "My tasks" to a non-admin
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
        expect(page.get_by_label("My tasks")).to_be_checked()
        expect(page.get_by_label("All tasks")).to_have_count(0)

        # the live view sends the token too (fetch streaming, not EventSource)
        with auth_server.client() as client:
            created = client.post(
                "/api/scaffolder/v2/tasks",
                json={"templateRef": "template:default/chatty-log", "values": {"lines": 2}},
            )
        assert created.status_code == 201, created.text
        page.goto(f"{auth_server.url}/create/tasks/{created.json()['id']}")
        expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
        expect(page.locator(".steps li", has_text="Second burst")).to_contain_text("completed")
        expect(page.get_by_role("dialog")).to_have_count(0)

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("dialog", name="Sign in")).to_be_visible()
    finally:
        context.close()
    assert errors.messages == []
