"""A loopback HTTP server that records every request it gets (an independent
record of side effects): method, path, headers, body, and when.

Paths choose the answer: one with ``/fail`` answers 500; with ``/hold``, waits until
``release()`` before answering (a request in flight when a run is interrupted);
anything else answers 200 with ``{"n": <how many requests so far>}``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.time() when it arrived

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # many runs call at once (tasks resuming together after a fault): the default
    # backlog of 5 would reset connections, failing steps for the server's sake
    request_queue_size = 256


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.arrived = threading.Condition(self._lock)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with outer.arrived:
                    outer.requests.append(
                        Recorded(self.command, self.path, dict(self.headers), body, time.time())
                    )
                    n = len(outer.requests)
                    outer.arrived.notify_all()
                if "/hold" in self.path:
                    outer._released.wait(60)
                code = 500 if "/fail" in self.path else 200
                data = json.dumps({"n": n}).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client went away (its run was interrupted)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def release(self) -> None:
        """Answer the held requests, and every later ``/hold`` at once."""
        self._released.set()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Recorded]:
        """Block until ``count`` requests have arrived (in a thread, from async code)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"{len(self.requests)} of {count} requests arrived")
            return list(self.requests)

    def keys(self) -> list[str | None]:
        return [r.header("Idempotency-Key") for r in self.requests]

    def close(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def recording() -> Iterator[Recorder]:
    server = Recorder()
    try:
        yield server
    finally:
        server.close()
