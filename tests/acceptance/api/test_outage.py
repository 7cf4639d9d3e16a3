"""A database outage seen from the API: 503 with Retry-After, one log line per
outage (no traceback per request), and service again once the database is back."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from support.chaos import TcpProxy

from .conftest import start_server

API = "/api/scaffolder"
pytestmark = pytest.mark.slow


def _through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _wait_ok(client_get: object, path: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        response = client_get(path)  # type: ignore[operator]
        if response.status_code == 200:
            return
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)


def test_an_outage_answers_503_with_retry_after_and_logs_one_line(
    postgres_url: str, tmp_path: Path
) -> None:
    parts = urlsplit(postgres_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    server = start_server(_through(proxy, postgres_url), tmp_path / "a", concurrency=0)
    try:
        client = server.client()
        assert client.get(f"{API}/v2/tasks").status_code == 200
        proxy.refuse()
        proxy.cut()
        answers = [client.get(f"{API}/v2/tasks") for _ in range(8)]
        answers.append(client.get("/readyz"))
        assert [a.status_code for a in answers] == [503] * 9, answers[-1].text
        assert {a.headers.get("Retry-After") for a in answers[:8]} == {"2"}
        assert {a.json()["error"]["name"] for a in answers[:8]} == {"DatabaseUnavailableError"}
        assert str(proxy.port) not in answers[0].text  # the detail is for the log only
        proxy.refuse(False)
        _wait_ok(client.get, f"{API}/v2/tasks")
        text = server.log.read_text()
        assert text.count("database unavailable") == 1, text
        assert "Traceback" not in text, text
    finally:
        server.process.kill()
        server.process.wait()
        proxy.close()
