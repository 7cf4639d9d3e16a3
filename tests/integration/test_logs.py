"""The process's log handler (falsework.logs.configure) never lets a URL's token out:
a real httpx request to a loopback server, whose URL carries a token in its query
and in its user information, logs the request with both redacted."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from falsework import logs
from support.logconfig import kept_logging

TOKEN = "tok-3f9a1c"


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def configured() -> Iterator[None]:
    with kept_logging():
        yield


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_token_in_a_url_never_reaches_the_log(
    server: str, configured: None, capfd: pytest.CaptureFixture[str], log_format: logs.LogFormat
) -> None:
    logs.configure("info", log_format)
    url = f"http://robot:{TOKEN}@{server}/hook?token={TOKEN}&event=push"
    with httpx.Client() as client:
        assert client.get(url).status_code == 200
    logging.getLogger("falsework.test").info("calling %s", url)
    err = capfd.readouterr().err
    assert TOKEN not in err
    # the lines are there, with what is not secret
    assert f"HTTP Request: GET http://***@{server}/hook?token=***&event=***" in err  # httpx's
    assert f"calling http://***@{server}/hook?token=***&event=***" in err


def test_redact_keeps_what_is_not_a_credential() -> None:
    text = "GET https://h.example/a/b?x=1;y=2#top and ssh git@h.example:a/b.git"
    assert (
        logs.redact(text)
        == "GET https://h.example/a/b?x=***;y=***#top and ssh git@h.example:a/b.git"
    )
    assert logs.redact("no url here") == "no url here"


def test_configured_lines_gather_no_caller_thread_or_process(configured: None) -> None:
    # what no line shows is not gathered for any logger, one made before
    # configure() (as every module's is, at import) and the root included
    early = logging.getLogger("falsework.test.early")
    logs.configure("info", "text")
    records: list[logging.LogRecord] = []
    catch = logging.Handler()
    catch.emit = records.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(catch)
    try:
        early.info("one")
        logging.getLogger().info("two")
        logging.getLogger("falsework.test.late").info("three")
    finally:
        logging.getLogger().removeHandler(catch)
    assert [r.getMessage() for r in records] == ["one", "two", "three"]
    for record in records:
        assert (record.pathname, record.lineno, record.funcName) == (
            "(unknown file)",
            0,
            "(unknown function)",
        )
        assert (record.thread, record.process, record.processName) == (None, None, None)
