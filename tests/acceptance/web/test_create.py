"""The gallery and the form, in a real Chromium against a real `falsework serve`."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Route, expect

from .conftest import Server, assert_labelled, shot

pytestmark = pytest.mark.browser

SECRET = "s3cret-token-value"


def test_root_redirects_and_gallery_filters(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/create$"))
    cards = page.locator(".template-card")
    expect(cards).to_have_count(5)
    expect(page.get_by_role("heading", name="Publish a service")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Local mode")
    shot(page, "gallery")

    page.get_by_label("Search").fill("endpoint")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("Call an endpoint")
    page.get_by_label("Search").fill("")
    expect(cards).to_have_count(5)

    page.get_by_label("Tag", exact=True).select_option("forms")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("Form showcase")
    expect(page).to_have_url(re.compile(r"tag=forms"))

    # the filter is in the URL: a reload keeps it
    page.reload()
    expect(cards).to_have_count(1)
    page.get_by_label("Tag", exact=True).select_option("")
    page.get_by_role("button", name="Show templates tagged recommended").click()
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("Publish a service")


def test_two_page_form_validates_creates_and_streams(page: Page, server: Server) -> None:
    page.goto(server.url + "/create")
    page.get_by_role("link", name="Choose Publish a service").click()
    expect(page).to_have_url(re.compile(r"/create/templates/default/publish-service$"))
    expect(page.get_by_role("heading", name="Service", exact=True)).to_be_visible()

    # ui:autofocus puts the cursor in Name; typing validates as you go
    name = page.get_by_label("Name", exact=True)
    expect(name).to_be_focused()
    name.fill("Bad Name!")
    error = page.locator(".field", has=name).locator(".field-error")
    expect(error).to_contain_text("starting and ending with a letter or digit")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Replicas")).to_have_value("2")  # the schema's default

    # Next shows every problem on the page and stays
    page.get_by_role("button", name="Next").click()
    owner = page.get_by_label("Owner", exact=True)
    expect(page.locator(".field", has=owner).locator(".field-error")).to_have_text(
        "This field is required."
    )
    expect(page.get_by_role("heading", name="Service", exact=True)).to_be_visible()
    page.get_by_label("Replicas").fill("9")
    expect(page.locator(".field", has=page.get_by_label("Replicas"))).to_contain_text(
        "Must be at most 5."
    )
    page.get_by_label("Replicas").fill("3")
    shot(page, "form-page-1-errors")

    name.fill("my-service")
    expect(error).to_be_hidden()
    page.get_by_label("Description").fill("A service made by the browser test.")
    owner.fill("group:default/web")
    expect(page.locator(".field-error:visible")).to_have_count(0)
    assert_labelled(page)
    shot(page, "form-page-1")
    page.get_by_role("button", name="Next").click()

    # page 2: the last parameters page has Review instead of Next
    expect(page.get_by_role("heading", name="Repository", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Next")).to_have_count(0)
    page.get_by_role("button", name="Review").click()
    expect(page.locator(".field-error:visible")).to_have_count(2)  # repo location, token
    page.get_by_label("Host").select_option("gitlab.example.com")
    page.get_by_label("Owner", exact=True).fill("acme")
    expect(page.locator(".repo-url .field-error")).to_have_text("Enter the name of the repository.")
    page.get_by_label("Repository", exact=True).fill("my-service")
    token = page.get_by_label("Access token")
    expect(token).to_have_attribute("type", "password")
    token.fill("short")
    expect(page.locator(".field", has=token)).to_contain_text("Must be at least 8 characters.")
    token.fill(SECRET)
    expect(page.locator(".field-error:visible")).to_have_count(0)
    assert_labelled(page)
    shot(page, "form-page-2")

    # Back keeps the values
    page.get_by_role("button", name="Back").click()
    expect(page.get_by_label("Name", exact=True)).to_have_value("my-service")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_label("Repository", exact=True)).to_have_value("my-service")
    expect(page.get_by_label("Access token")).to_have_value(SECRET)
    page.get_by_role("button", name="Review").click()

    # the review page masks the secret
    review = page.locator("dl.review")
    expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible()
    expect(review.first).to_contain_text("my-service")
    expect(page.locator("main")).to_contain_text("gitlab.example.com/acme/my-service")
    expect(page.locator("main")).not_to_contain_text(SECRET)
    expect(page.locator("dd", has_text="••••••••")).to_have_count(1)
    shot(page, "form-review")

    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/create/tasks/[0-9a-f-]{36}$"))
    task_id = page.url.rsplit("/", 1)[1]

    # the steps complete live: the wait step is seen running, then everything completes
    wait_step = page.locator(".steps li", has_text="Wait a moment")
    expect(wait_step.locator(".step-status")).to_have_text("processing")
    expect(page.locator("#task-status")).to_have_text(re.compile("processing"))
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_be_visible()
    shot(page, "task-running")
    expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
    for step in ("Announce", "Wait a moment", "Report"):
        expect(page.locator(".steps li", has_text=step).locator(".step-status")).to_have_text(
            "completed"
        )
    expect(wait_step.locator(".duration")).to_have_text(re.compile(r"^\d+ s$"))
    expect(page.locator(".task-meta .took")).to_have_text(re.compile(r"^ · took \d+ s$"))
    link = page.get_by_role("link", name="Open the repository")
    expect(link).to_have_attribute("href", "https://example.test/my-service")
    expect(page.locator(".output")).to_contain_text("my-service is owned by group:default/web")
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_have_count(0)

    # the secret reached the task (the step logged it, redacted) but never the page's state
    page.get_by_role("button", name=re.compile("^Report")).click()
    report_log = page.get_by_role("log", name="Log of Report")
    expect(report_log).to_contain_text("Pushed with token ***")
    # the runner's ANSI colour codes are rendered, not shown raw
    expect(report_log.locator("span.ansi-fg-green", has_text="info").first).to_be_visible()
    expect(report_log).not_to_contain_text("[32m")
    expect(page.locator("body")).not_to_contain_text(SECRET)
    stored = page.evaluate("() => JSON.stringify([localStorage, sessionStorage, history.state])")
    assert SECRET not in stored
    assert SECRET not in page.url
    shot(page, "task-finished")

    # the task list shows it
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    row = page.locator("tr", has=page.get_by_role("link", name=f"Task {task_id[:8]}"))
    expect(row).to_contain_text("Publish a service")
    expect(row).to_contain_text("completed")


def test_the_old_view_is_busy_until_the_next_one_has_its_data(page: Page, server: Server) -> None:
    page.goto(server.url + "/create")
    expect(page.locator(".template-card")).to_have_count(5)
    held: list[Route] = []
    # hold the form's schema request: the gallery must stay, dimmed and inert
    page.route("**/parameter-schema", lambda route: held.append(route))
    page.locator(".template-card", has_text="Call an endpoint").get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(r"/create/templates/default/call-endpoint$"))
    main = page.locator("main")
    expect(main).to_have_attribute("aria-busy", "true")
    expect(main).to_have_attribute("data-ready", "false")
    expect(page.locator(".template-card")).to_have_count(5)
    assert main.evaluate("m => getComputedStyle(m).pointerEvents") == "none"
    for _ in range(250):  # Playwright hands the held request over while we wait
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "the schema request was not made"
    held[0].continue_()
    expect(main).to_have_attribute("data-ready", "true")
    expect(main).not_to_have_attribute("aria-busy", "true")
    expect(page.get_by_label("Endpoint", exact=True)).to_be_visible()
    assert main.evaluate("m => getComputedStyle(m).pointerEvents") == "auto"
