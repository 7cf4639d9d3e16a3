"""The live view survives a dropped connection: it reconnects with Last-Event-ID and shows
every log line exactly once."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from .conftest import Server, shot

pytestmark = pytest.mark.browser


class Proxy:
    """A TCP proxy on loopback in front of the server; `drop()` cuts every connection."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        self.requests: list[bytes] = []  # the first bytes of each client connection
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                self.open += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    with self.lock:
                        self.requests.append(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def drop(self) -> None:
        with self.lock:
            sockets, self.open = self.open, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def stream_requests(self) -> list[str]:
        with self.lock:
            heads = [r.decode("latin-1") for r in self.requests]
        return [h for h in heads if "/eventstream" in h.split("\r\n", 1)[0]]

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        self.drop()


@pytest.fixture
def proxy(server: Server) -> Iterator[Proxy]:
    p = Proxy(int(server.url.rsplit(":", 1)[1]))
    yield p
    p.close()


def test_reconnects_without_losing_or_repeating_lines(
    page: Page, server: Server, proxy: Proxy
) -> None:
    with server.client() as client:
        response = client.post(
            "/api/scaffolder/v2/tasks",
            json={
                "templateRef": "template:default/publish-service",
                "values": {
                    "name": "reconnect",
                    "owner": "group:default/web",
                    "repoUrl": "github.com?owner=acme&repo=reconnect",
                    "token": "*" * 10,
                },
                "secrets": {"token": "reconnect!"},
            },
        )
        assert response.status_code == 201, response.text
        task_id = response.json()["id"]

    page.goto(f"http://127.0.0.1:{proxy.port}/create/tasks/{task_id}")
    wait_step = page.locator(".steps li", has_text="Wait a moment")
    expect(wait_step.locator(".step-status")).to_have_text("processing")
    assert len(proxy.stream_requests()) == 1

    proxy.drop()  # mid-task: the page must notice and reconnect
    expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
    streams = proxy.stream_requests()
    assert len(streams) >= 2
    assert re.search(r"(?im)^last-event-id: \d+\r$", streams[1]), streams[1]

    page.get_by_role("button", name=re.compile("^All steps")).click()
    log = page.get_by_role("log", name="Log of All steps")
    # each line's text without its time stamp
    shown = log.locator(".line").evaluate_all(
        """lines => lines.map((line) => [...line.childNodes]
            .filter((n) => !(n.classList && n.classList.contains('ts')))
            .map((n) => n.textContent).join('').trim())"""
    )
    with server.client() as client:
        events = client.get(f"/api/scaffolder/v2/tasks/{task_id}/events").json()
    expected = [e["body"]["message"] for e in events if "message" in e["body"]]
    assert len(shown) == len(expected), (shown, expected)
    for line, message in zip(shown, expected, strict=True):  # same lines, same order
        assert line == re.sub(r"\x1b\[[0-9;]*m", "", message).strip(), (line, message)
    shot(page, "task-reconnected")


def test_log_follows_until_the_user_scrolls_up(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/create/templates/default/chatty-log")
    page.get_by_role("button", name="Review").click()
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/create/tasks/[0-9a-f-]{36}$"))
    page.get_by_role("button", name=re.compile("^All steps")).click()
    log = page.get_by_role("log", name="Log of All steps")
    pause = page.locator(".steps li", has_text="Pause")
    expect(pause.locator(".step-status")).to_have_text("processing")

    # following: the first burst scrolled the panel to its end
    metrics = "el => [el.scrollTop, el.scrollHeight - el.clientHeight]"
    top, bottom = log.evaluate(metrics)
    assert bottom > 0 and top == bottom, (top, bottom)
    follow = page.get_by_role("button", name="Follow log")
    expect(follow).to_be_hidden()

    # the user scrolls up: the second burst arrives and the panel stays put
    log.hover()
    page.mouse.wheel(0, -400)
    expect(follow).to_be_visible()
    held = log.evaluate("el => el.scrollTop")
    assert held < bottom
    expect(page.locator("#task-status")).to_have_text(re.compile("completed"))
    top, new_bottom = log.evaluate(metrics)
    assert new_bottom > bottom and top == held, (top, held, new_bottom)

    # output links: only web URLs become links; an entity ref without a URL is text
    expect(page.get_by_role("link", name="Not a web link")).to_have_attribute("href", "#")
    expect(page.locator(".output")).to_contain_text("Catalog entry component:default/chatty")

    # Follow log jumps to the end and follows again
    follow.click()
    expect(follow).to_be_hidden()
    top, bottom = log.evaluate(metrics)
    assert top == bottom
