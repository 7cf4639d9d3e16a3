"""A stand-in for Argo Workflows: a real HTTP server on loopback speaking a sliver
of its API (argo:submit's examples and tests talk to it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class FakeArgo:
    """A real HTTP server on loopback speaking a sliver of Argo's API."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.polls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                outer.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "body": body,
                        "headers": dict(self.headers),
                    }
                )
                self._reply(201, {"metadata": {"name": "build-x"}})

            def do_GET(self) -> None:
                outer.requests.append(
                    {"method": "GET", "path": self.path, "headers": dict(self.headers)}
                )
                if self.path.endswith("/build-x"):
                    outer.polls += 1
                    phase = "Succeeded" if outer.polls >= 3 else "Running"
                    self._reply(200, {"status": {"phase": phase}})
                elif self.path.endswith("/never"):
                    self._reply(200, {"status": {"phase": "Running"}})
                else:
                    self._reply(404, {"message": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def argo() -> Iterator[FakeArgo]:
    server = FakeArgo()
    yield server
    server.close()
