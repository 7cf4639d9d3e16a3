"""The API's edge: what every request must pass before a route sees it.

- **Host**: in local mode (no tokens, loopback) every caller is the admin guest, so
  a page in the developer's browser that rebinds its own DNS name to 127.0.0.1
  would be one too. Such a request still carries its own name in ``Host``: local
  mode answers only ``127.0.0.1``, ``localhost``, ``[::1]`` and the configured
  ``allowed_hosts`` (421 otherwise). With tokens the check is off unless
  ``allowed_hosts`` is set: a browser never attaches a bearer token by itself, so a
  rebound page gains nothing.
- **Body**: at most ``max_body`` bytes (413), all of it within ``body_timeout``
  seconds (408), and a JSON body nested at most ``max_depth`` levels (422) — checked
  here, before pydantic, the database or the task list meet a value they cannot
  handle (pydantic stops serialising at 255 levels).
- **Headers**: every answer says ``nosniff``; one that sets no Content-Security-Policy
  of its own (all but the page) gets one that allows nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
from collections.abc import Iterable
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from falsework.api import errors

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
# Probes answer whatever name a load balancer uses: they reveal nothing.
UNCHECKED_PATHS = frozenset({"/healthz", "/readyz"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Bodies above this are parsed for the depth check in a thread.
_INLINE_PARSE = 256 * 1024
_API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
_TRIM_AFTER = 1024 * 1024
_DEFAULT_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"content-security-policy", _API_CSP))


def _trim_heap() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).malloc_trim(0)


def keep_large_buffers_apart() -> None:
    """Large buffers (a request body, its decoded files, a dry-run's result) in their
    own mappings, returned to the system when freed: glibc raises its mmap threshold
    after the first large free (up to 32 MB), after which such buffers land in the
    heap and fragment it, so a few hostile uploads would keep the server tens of MB
    bigger for good. Setting the threshold fixes it where it is (M_MMAP_THRESHOLD)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).mallopt(-3, 256 * 1024)


def allowed_host_names(local_mode: bool, configured: Iterable[str]) -> frozenset[str] | None:
    """The Host names to accept, or None when any Host is accepted."""
    names = {_normal(name) for name in configured if name.strip()}
    if not local_mode and not names:
        return None
    return frozenset({*LOOPBACK_NAMES, *names})


def host_name(header: str) -> str | None:
    """The name of a ``Host`` header (``name``, ``name:port``, ``[v6]:port``),
    lower-case, or None when it is malformed."""
    value = header.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
    else:
        name, _, port = value.partition(":")
        rest = f":{port}" if port else ""
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return None
    return _normal(name) or None


def _normal(name: str) -> str:
    return name.strip().strip("[]").rstrip(".").lower()


def json_too_deep(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels (the top one is 1)."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def _too_deep(body: bytes, limit: int) -> bool:
    try:
        return json_too_deep(json.loads(body), limit)
    except RecursionError:
        return True
    except ValueError:
        return False  # not JSON: the route answers 422 for that itself


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # FastAPI reads a body without a content type as JSON
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class _Refused(Exception):
    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message


class Edge:
    """ASGI middleware applying the rules in the module's docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: frozenset[str] | None,
        max_body: int,
        body_timeout: float,
        max_depth: int,
    ) -> None:
        self.app = app
        self.hosts = hosts
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.max_depth = max_depth
        self.too_large = f"The request body is larger than {max_body // (1024 * 1024)} MB."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # ASGI servers give the names in lower case (Starlette's Headers relies on it too)
        headers = dict(scope.get("headers") or [])
        body_size = 0
        try:
            self._check_host(scope, headers)
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                raise _Refused(413, "PayloadTooLargeError", self.too_large)
            if scope["method"] in _BODY_METHODS:
                body = await self._read_body(receive)
                if body is None:
                    return  # the client went away
                body_size = len(body)
                content_type = headers.get(b"content-type", b"").decode("latin-1")
                if body and _is_json(content_type) and await self._too_deep(body):
                    raise _Refused(
                        422,
                        "InputError",
                        f"The JSON body is nested more than {self.max_depth} levels deep "
                        "(objects and arrays), the server's limit (max_json_depth).",
                    )
                receive = replay(body, receive)
        except _Refused as refused:
            await self._refuse(scope, send, refused)
            return
        try:
            await self.app(scope, receive, _with_headers(send))
        finally:
            if body_size > _TRIM_AFTER:
                # A big body leaves megabytes of freed heap that glibc keeps: give
                # them back, so hostile uploads do not ratchet the server's RSS up.
                await anyio.to_thread.run_sync(_trim_heap)

    def _check_host(self, scope: Scope, headers: dict[bytes, bytes]) -> None:
        if self.hosts is None or scope["path"] in UNCHECKED_PATHS:
            return
        raw = headers.get(b"host", b"").decode("latin-1")
        name = host_name(raw)
        if name not in self.hosts:
            shown = raw[:100] or "(none)"
            raise _Refused(
                421,
                "MisdirectedRequestError",
                f"This server does not answer to the Host {shown!r}: it answers "
                f"{', '.join(sorted(self.hosts))} (add a name to allowed_hosts in the "
                "config to allow it).",
            )

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        raise _Refused(413, "PayloadTooLargeError", self.too_large)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _Refused(
                408,
                "RequestTimeoutError",
                f"The request body did not arrive within {self.body_timeout:g} seconds.",
            ) from None

    async def _too_deep(self, body: bytes) -> bool:
        if body.count(b"{") + body.count(b"[") <= self.max_depth:
            # each level opens one: this body cannot nest deeper, nothing to parse
            return False
        if len(body) <= _INLINE_PARSE:
            return _too_deep(body, self.max_depth)
        # A big body's walk runs in a thread: it is pure Python, so the event loop
        # gets the GIL between its bytecodes.
        return await anyio.to_thread.run_sync(_too_deep, body, self.max_depth)

    async def _refuse(self, scope: Scope, send: Send, refused: _Refused) -> None:
        body = errors.error_body(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            refused.status,
            refused.name,
            refused.message,
        )
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": refused.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    (b"connection", b"close"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"content-security-policy", _API_CSP),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


def replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that hands over the body read already, then the client's messages
    (a route waiting for the disconnect still sees it)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            # as MutableHeaders.setdefault would (names as given), without building one
            headers = list(message.get("headers", ()))
            names = {name for name, _ in headers}
            headers.extend(item for item in _DEFAULT_HEADERS if item[0] not in names)
            message["headers"] = headers
        await send(message)

    return sending
