"""A git server over HTTP on loopback: git's own smart-HTTP program (``git
http-backend``, the CGI program behind most self-hosted git web servers) behind a
small threaded HTTP server that records every request (path and Authorization)."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)
    return done.stdout.decode().strip()


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None


class _Handler(BaseHTTPRequestHandler):
    server: GitHttpServer

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        self.server.seen.append(Seen(self.command, path, self.headers.get("Authorization")))
        if not self.server.authorized(path, self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        env = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": "tester",  # lets pushes (receive-pack) through
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        body = self.rfile.read(length) if length else b""
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        ).stdout
        head, sep, payload = out.partition(b"\r\n\r\n")
        if not sep:
            head, _, payload = out.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _cgi

    def log_message(self, format: str, *args: Any) -> None:
        pass


class GitHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, root: Path, authorized: Callable[[str, str | None], bool], host: str = "127.0.0.1"
    ) -> None:
        super().__init__((host, 0), _Handler)
        self.root = root
        self.authorized = authorized
        self.seen: list[Seen] = []


@dataclass
class GitHost:
    """A running git server: ``url`` (``http://127.0.0.1:PORT``) serves ``root``."""

    root: Path
    server: GitHttpServer
    thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def netloc(self) -> str:
        return self.url.removeprefix("http://")

    @property
    def seen(self) -> list[Seen]:
        return self.server.seen

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_git(
    root: Path, authorized: Callable[[str, str | None], bool] = lambda path, auth: True
) -> GitHost:
    """Serve the bare repositories under ``root``; ``authorized(path, header)``
    decides which requests get past a 401."""
    server = GitHttpServer(root, authorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return GitHost(root, server, thread)


def bare_repository(path: Path, files: dict[str, str], *, branch: str = "main") -> Path:
    """A bare repository at ``path`` whose ``branch`` holds ``files``; pushes over
    HTTP are accepted."""
    work = path.with_name(path.name + "-work")
    work.mkdir(parents=True)
    git("init", "-q", "-b", branch, cwd=work)
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-qm", "init", cwd=work)
    git("clone", "-q", "--bare", str(work), str(path), cwd=work.parent)
    git("config", "http.receivepack", "true", cwd=path)
    return path
