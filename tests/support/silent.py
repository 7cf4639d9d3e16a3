"""A TCP server on loopback that accepts connections and never answers: a git or
HTTP peer that hangs, for the tests of time limits (the egress tests in process,
the security tests through a real server)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class Silent:
    """Accepts on ``port`` (a free one) and keeps every connection open, unanswered,
    until ``close``; ``connected`` is set at the first connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self.connected = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.append(conn)
            self.connected.set()

    def close(self) -> None:
        self._stop.set()
        self.thread.join()
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@contextlib.contextmanager
def silent_server() -> Iterator[Silent]:
    server = Silent()
    try:
        yield server
    finally:
        server.close()
