"""A webhook receiver on loopback: records every request, checks its signature
twice (with the ``standardwebhooks`` library and by hand, from the scheme's
definition), and answers what the test scripts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"falsework-test-webhook-secret-32b").decode()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool  # by the library
    by_hand: bool  # by the scheme's definition

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def signed_by_hand(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(part == f"v1,{expected}" for part in headers.get("webhook-signature", "").split(" "))


class Receiver:
    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.received: list[Received] = []
        # statuses answered in turn (then 204); "hold" keeps the request open
        # until `release` is set (the sender is killed meanwhile)
        self.script: list[int | str] = []
        self.release = threading.Event()
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        self.url = ""

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length", "0"))
        body = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            Webhook(self.secret).verify(body, headers, json_parse=False)
            verified = True
        except Exception:
            verified = False
        with self._lock:
            self.received.append(
                Received(headers, body, verified, signed_by_hand(self.secret, headers, body))
            )
            answer = self.script.pop(0) if self.script else 204
        self.arrived.set()
        if answer == "hold":
            self.release.wait(60)
            answer = 204
        handler.send_response(int(answer))
        handler.send_header("content-length", "0")
        handler.end_headers()


@contextmanager
def receiving(secret: str = SECRET) -> Iterator[Receiver]:
    receiver = Receiver(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver.handle(self)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/falsework?token=abc"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
