"""The live task page (cancel, retry, reconnect) and the task list, in a real Chromium."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import Server, assert_labelled, shot

pytestmark = pytest.mark.browser


class Endpoint(ThreadingHTTPServer):
    """A real HTTP endpoint on loopback whose answer the test switches."""

    status = 503
    calls = 0


class _Handler(BaseHTTPRequestHandler):
    server: Endpoint

    def do_GET(self) -> None:
        self.server.calls += 1
        body = b'{"state": "ready"}' if self.server.status == 200 else b'{"state": "down"}'
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    srv = Endpoint(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def create_from_page(page: Page, server: Server, name: str) -> str:
    """Open a one-page template's form, go to Review, Create; return the task id."""
    page.goto(f"{server.url}/create/templates/default/{name}")
    page.get_by_role("button", name="Review").click()
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/create/tasks/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def test_cancel_a_running_wait_task(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/create/templates/default/wait-a-minute")
    expect(page.get_by_label("Label")).to_have_value("waiting")
    assert_labelled(page)
    page.get_by_label("reason", exact=True).fill("no title: labelled by its key")
    approver = page.get_by_label("Approver")
    suggestions = page.locator(f"#{approver.get_attribute('list')} option")
    expect(suggestions).to_have_count(2)
    approver.fill("user:default/carol")
    expect(page.locator(".field", has=approver)).to_contain_text("Choose one of the suggestions.")
    approver.fill("user:default/bob")
    expect(page.locator(".field", has=approver).locator(".field-error")).to_be_hidden()
    page.get_by_role("button", name="Review").click()
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/create/tasks/[0-9a-f-]{36}$"))
    step = page.locator(".steps li", has_text="Wait sixty seconds")
    expect(step.locator(".step-status")).to_have_text("processing")
    expect(page.locator("#task-status")).to_have_text(re.compile("processing"))

    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.locator("#task-status")).to_have_text(re.compile("cancelled"))
    expect(step.locator(".step-status")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    expect(page.get_by_role("button", name="Start over")).to_be_visible()

    # the server agrees
    task_id = page.url.rsplit("/", 1)[1]
    with server.client() as client:
        assert client.get(f"/api/scaffolder/v2/tasks/{task_id}").json()["status"] == "cancelled"


def test_retry_a_failed_task(page: Page, server: Server, endpoint: Endpoint) -> None:
    url = f"http://127.0.0.1:{endpoint.server_address[1]}/status"
    page.goto(f"{server.url}/create/templates/default/call-endpoint")
    page.get_by_role("button", name="Review").click()
    expect(page.locator(".field", has=page.get_by_label("Endpoint"))).to_contain_text(
        "This field is required."
    )
    page.get_by_label("Endpoint").fill(url)
    page.get_by_role("button", name="Review").click()
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/create/tasks/[0-9a-f-]{36}$"))

    status = page.locator("#task-status")
    expect(status).to_have_text(re.compile("failed"))
    step = page.locator(".steps li", has_text="Call the endpoint")
    expect(step.locator(".step-status")).to_have_text("failed")
    expect(page.locator(".task-error")).to_contain_text("503")
    expect(page.get_by_role("button", name="Start over")).to_be_visible()
    shot(page, "task-failed")
    assert endpoint.calls == 1

    # the endpoint comes back; Retry runs the task again, live, to completion
    endpoint.status = 200
    page.get_by_role("button", name="Retry").click()
    expect(status).to_have_text(re.compile("completed"))
    expect(step.locator(".step-status")).to_have_text("completed")
    expect(page.locator(".task-error")).to_be_hidden()
    expect(page.locator(".output")).to_contain_text("ready")
    assert endpoint.calls == 2

    # opened afresh, the page replays both attempts and ends where the task ended
    page.reload()
    expect(status).to_have_text(re.compile("completed"))
    expect(step.locator(".step-status")).to_have_text("completed")
    expect(page.locator(".task-error")).to_be_hidden()
    step_log = page.get_by_role("log", name="Log of Call the endpoint")
    expect(step_log.locator(".line", has_text="Beginning step Call the endpoint")).to_have_count(2)

    # Start over goes back to the form with the task's values
    page.get_by_role("button", name="Run again").click()
    expect(page).to_have_url(re.compile(r"/create/templates/default/call-endpoint$"))
    expect(page.get_by_label("Endpoint", exact=True)).to_have_value(url)


def _status(client: httpx.Client, task_id: str) -> str:
    return str(client.get(f"/api/scaffolder/v2/tasks/{task_id}").json()["status"])


def test_task_list_filters_and_pages(page: Page, server: Server) -> None:
    with server.client() as client:
        ids: list[str] = []
        for i in range(22):
            response = client.post(
                "/api/scaffolder/v2/tasks",
                json={
                    "templateRef": "template:default/wait-a-minute",
                    "values": {"label": f"l{i}"},
                },
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
            client.post(f"/api/scaffolder/v2/tasks/{ids[-1]}/cancel")
        # a running task's cancel lands when its worker stops it: wait until all have
        deadline = time.monotonic() + 30
        while any(_status(client, task_id) != "cancelled" for task_id in ids):
            assert time.monotonic() < deadline, "the cancelled tasks did not stop"
            time.sleep(0.2)
        total = client.get("/api/scaffolder/v2/tasks", params={"limit": 1}).json()["totalTasks"]
        cancelled = client.get(
            "/api/scaffolder/v2/tasks", params={"limit": 1, "status": "cancelled"}
        ).json()["totalTasks"]
    assert total >= 22

    page.goto(f"{server.url}/create/tasks")
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(20)
    expect(page.locator(".pager")).to_contain_text(f"1–20 of {total}")
    first = rows.first
    expect(first.get_by_role("link")).to_have_text(re.compile(r"^[0-9a-f]{8}$"))
    expect(first).to_contain_text("Wait a minute")
    expect(first).to_contain_text("cancelled")
    shot(page, "task-list")

    page.get_by_role("button", name="Next page").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(rows).to_have_count(min(20, total - 20))
    expect(page.locator(".pager")).to_contain_text(f"21–{min(40, total)} of {total}")
    page.get_by_role("button", name="Previous").click()
    expect(rows).to_have_count(20)

    page.get_by_label("Status").select_option("cancelled")
    expect(page).to_have_url(re.compile(r"status=cancelled"))
    expect(page.locator(".pager")).to_contain_text(f"of {cancelled}")
    for status in page.locator("table.tasks tbody td[data-label=Status]").all_inner_texts():
        assert status == "cancelled"

    # a row opens its task
    link = rows.first.get_by_role("link")
    short = link.inner_text()
    link.click()
    expect(page).to_have_url(re.compile(rf"/create/tasks/{short}[0-9a-f-]+$"))
    expect(page.locator("#task-status")).to_have_text(re.compile("cancelled"))
