"""A loopback git forge for the tests: real git repositories, a REST API checked
against the host's OpenAPI description (GitHub's official one from npm; for GitLab,
Gitea, Bitbucket Cloud and Server and Azure DevOps, whose descriptions no registry
ships, one written here from the host's REST reference: contract.py, specs/).

One ``ForgeServer`` serves, on one loopback port:

- git's smart HTTP (``/<owner>/<repo>.git/...``, or the host's own ``git_route``:
  Azure's ``/org/project/_git/repo``) by git's own CGI program, ``git http-backend``,
  over bare repositories the server keeps, with HTTP Basic authentication (the
  password is a token, as on every forge) or a bearer token;
- the REST API under ``api_prefix``: each request is matched to an operation of the
  spec, validated (parameters, body), handed to the host's handler for that
  ``operationId``, and the handler's answer is validated as a response of that
  operation. A request the real host would reject is answered 422 AND recorded in
  ``violations``; so is a response the spec does not allow, an operation the host
  model does not implement, or a path that is no operation of the spec. The test
  fixtures fail a test whose run left any violation.

The host model (``ForgeHost``: GitHub, GitLab, Gitea, BitbucketCloud,
BitbucketServer, AzureDevOps) keeps the state (repositories, pull
requests, protections, ...) and implements the operations the actions call.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from support.forge.contract import Contract


@dataclass
class Call:
    """One REST request as the server saw it."""

    method: str
    path: str
    operation: str
    query: dict[str, Any]
    body: Any
    user: str | None
    status: int = 0


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # a non-JSON body (e.g. raw file contents)
    content_type: str = "application/json; charset=utf-8"


class HttpError(Exception):
    """A handler's refusal, answered as the host answers errors."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body  # the host's own error body, when it is not error_body's


Handler = Callable[[Call, dict[str, str]], Reply]


class ForgeHost(Protocol):
    contract: Contract
    api_prefix: str

    def handlers(self) -> dict[str, Handler]: ...

    def user_of(self, token: str) -> str | None: ...

    def repo_dir(self, owner: str, repo: str) -> Path | None: ...

    def error_body(self, status: int, message: str) -> Any: ...

    def bind(self, url: str) -> None: ...


class ForgeServer:
    def __init__(self, host: ForgeHost) -> None:
        self.host = host
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.pushes: list[tuple[str, str | None]] = []  # (repo path, user)
        self.refuse_pushes = 0  # answer the next N pushes 503 (a forge having a bad day)
        self._handlers = host.handlers()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.netloc = f"127.0.0.1:{self.port}"
        host.bind(self.url)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> ForgeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    def take_violations(self) -> list[str]:
        with self._lock:
            found, self.violations = self.violations, []
        return found

    def git_route(self, path: str) -> tuple[str, str, str] | None:
        """``(owner, repo, rest)`` of a git request (``/owner/repo.git/info/refs``, or the
        host's own form: Azure's ``/org/project/_git/repo/info/refs``), None for REST."""
        prefix = self.host.api_prefix
        if prefix and path.startswith(prefix + "/"):
            return None
        route: Callable[[str], tuple[str, str, str] | None] = getattr(
            self.host, "git_route", _git_path
        )
        return route(path)

    def calls_to(self, operation: str) -> list[Call]:
        return [c for c in self.calls if c.operation == operation]

    # -- REST -------------------------------------------------------------
    def api(
        self, method: str, target: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        path = parts.path.removeprefix(self.host.api_prefix) or "/"
        query = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(parts.query).items()}
        user = self._user(headers)
        contract = self.host.contract
        operation = contract.operation(method, path)
        if operation is None:
            self.violation(f"{method} {path}: no operation of the {contract.name} API")
            return self._json(404, self.host.error_body(404, "Not Found"))
        content_type = headers.get("Content-Type", "") or "application/json"
        try:
            parsed = json.loads(body) if body else None
        except json.JSONDecodeError:
            parsed = None
        call = Call(method, path, operation.id, query, parsed, user)
        with self._lock:
            self.calls.append(call)
        errors = contract.request_errors(method, path, query, body, content_type)
        if errors:
            self.violation(f"{method} {path} ({operation.id}) rejected by the spec: {errors}")
            call.status = 422
            return self._json(422, self.host.error_body(422, "; ".join(errors)))
        if user is None:
            call.status = 401
            return self._json(401, self.host.error_body(401, "Requires authentication"))
        handler = self._handlers.get(operation.id)
        if handler is None:
            self.violation(f"{method} {path}: operation {operation.id} is not implemented")
            return self._json(501, self.host.error_body(501, f"{operation.id} not implemented"))
        try:
            reply = handler(call, operation.path_params)
        except HttpError as exc:
            body = (
                exc.body if exc.body is not None else self.host.error_body(exc.status, exc.message)
            )
            reply = Reply(exc.status, body)
            call.status = exc.status
            return self._json(exc.status, reply.body)
        call.status = reply.status
        if reply.raw is not None:
            data = reply.raw
        else:
            if reply.body is not None:
                reply.body = contract.synthesise(operation.id, reply.status, reply.body)
            data = b"" if reply.body is None else json.dumps(reply.body).encode()
            errors = contract.response_errors(
                method, path, query, reply.status, data, reply.content_type.split(";")[0]
            )
            if errors:
                self.violation(
                    f"{method} {path} ({operation.id}): response breaks the spec: {errors}"
                )
        return reply.status, {"Content-Type": reply.content_type, **reply.headers}, data

    def _json(self, status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
        return (
            status,
            {"Content-Type": "application/json; charset=utf-8"},
            json.dumps(body).encode(),
        )

    def _user(self, headers: Any) -> str | None:
        private = headers.get("PRIVATE-TOKEN")  # GitLab's own header for a token
        if private:
            return self.host.user_of(private.strip())
        header = headers.get("Authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("token", "bearer"):
            return self.host.user_of(value.strip())
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip()).decode()
            except ValueError:
                return None
            return self.host.user_of(decoded.partition(":")[2])
        return None

    # -- git ----------------------------------------------------------------
    def git(
        self, method: str, target: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        path, _, query = target.partition("?")
        owner, repo, rest = self.git_route(unquote(path)) or ("", "", "")
        user = self._user(headers)
        if user is None:
            return 401, {"WWW-Authenticate": 'Basic realm="forge"'}, b""
        folder = self.host.repo_dir(owner, repo)
        if folder is None:
            return 404, {}, b"Repository not found"
        if "git-receive-pack" in rest and method == "POST":
            with self._lock:
                if self.refuse_pushes > 0:
                    self.refuse_pushes -= 1
                    return 503, {}, b"Service Unavailable"
                self.pushes.append((f"{owner}/{repo}", user))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "GIT_PROJECT_ROOT": str(folder.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{folder.name}{rest}",
            "QUERY_STRING": query,
            "REQUEST_METHOD": method,
            "CONTENT_TYPE": headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": user,
            "GIT_PROTOCOL": headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": headers.get("Content-Encoding", ""),
        }
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        ).stdout
        head, sep, payload = out.partition(b"\r\n\r\n")
        if not sep:
            head, _, payload = out.partition(b"\n\n")
        status, reply_headers = 200, {}
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                reply_headers[name] = value.strip()
        return status, reply_headers, payload


def _git_path(path: str) -> tuple[str, str, str] | None:
    """``/owner/repo.git/info/refs`` → ``(owner, repo, /info/refs)``."""
    if ".git/" not in path:
        return None
    head, _, rest = path.partition(".git/")
    owner, _, repo = head.strip("/").partition("/")
    return owner, repo, "/" + rest


def _make_handler(server: ForgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = unquote(self.path.split("?", 1)[0])
            if server.git_route(path) is not None:
                status, headers, data = server.git(self.command, self.path, self.headers, body)
            else:
                status, headers, data = server.api(self.command, self.path, self.headers, body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
