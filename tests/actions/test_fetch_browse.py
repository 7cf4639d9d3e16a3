"""fetch:* from a git host's folder and file pages (…/tree/<ref>/<path> and the
GitLab, Gitea and Bitbucket shapes), against a real git repository served over
HTTP on loopback by git's own smart-HTTP server program (``git http-backend``,
the CGI program behind most self-hosted git web servers)."""

from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from falsework.actions.policies import GitCredential, GitPolicy, SourcePolicy
from falsework.actions.sources import browse_url

VALUES = {"name": "svc"}
TOKEN = "tok-3f9a-private"
PRIVATE_AUTH = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True)
    return done.stdout.decode().strip()


class GitHttp(BaseHTTPRequestHandler):
    """A minimal CGI bridge to ``git http-backend`` for the folder ``server.root``."""

    server: Any

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith("/private/") and self.headers.get("Authorization") != PRIVATE_AUTH:
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


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A web server whose /team/tools.git is a repository with the branches main and
    feature/x and the tag v1; yields its base URL and the commit ids."""
    root = tmp_path_factory.mktemp("githost")
    work = root / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "skel").mkdir()
    (work / "skel" / "${{ values.name }}.txt").write_text("main ${{ values.name }}\n")
    (work / "README.md").write_text("top\n")
    git("add", "-A", cwd=work)
    git("commit", "-qm", "one", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work)
    git("tag", "v1", cwd=work)
    git("checkout", "-q", "-b", "feature/x", cwd=work)
    (work / "skel" / "${{ values.name }}.txt").write_text("feature ${{ values.name }}\n")
    git("commit", "-qam", "two", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    (work / "skel" / "${{ values.name }}.txt").write_text("main2 ${{ values.name }}\n")
    git("commit", "-qam", "three", cwd=work)
    bare = root / "site" / "team" / "tools.git"
    bare.parent.mkdir(parents=True)
    git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    private = root / "site" / "private" / "tools.git"
    private.parent.mkdir(parents=True)
    git("clone", "-q", "--bare", str(work), str(private), cwd=root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), GitHttp)
    server.root = root / "site"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", {"first": first}
    finally:
        server.shutdown()
        server.server_close()


def test_browse_urls_are_recognised() -> None:
    gh = browse_url("https://github.com/o/r/tree/main/templates/svc")
    assert gh == ("https://github.com/o/r.git", ["main", "templates", "svc"])
    gl = browse_url("https://gitlab.example.com/g/sub/r/-/blob/v1.2/a%20b.txt")
    assert gl == ("https://gitlab.example.com/g/sub/r.git", ["v1.2", "a b.txt"])
    assert browse_url("https://gitea.example.com/o/r/src/branch/dev/x") == (
        "https://gitea.example.com/o/r.git",
        ["dev", "x"],
    )
    assert browse_url("https://bitbucket.org/ws/r/src/main/x/") == (
        "https://bitbucket.org/ws/r.git",
        ["main", "x"],
    )
    assert browse_url("https://example.com/just/a/page") is None
    assert browse_url("file:///o/r/tree/main/x") is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/team/tools/tree/main/skel", "main2 svc\n"),
        ("/team/tools/tree/feature/x/skel", "feature svc\n"),  # a branch with a slash
        ("/team/tools/tree/v1/skel", "main svc\n"),  # a tag
        ("/team/tools/-/tree/feature/x/skel", "feature svc\n"),  # GitLab
        ("/team/tools/src/branch/main/skel", "main2 svc\n"),  # Gitea
        ("/team/tools/src/v1/skel/", "main svc\n"),  # Bitbucket
    ],
)
async def test_fetch_template_from_a_folder_page(
    harness: Any, one_step: Any, host: tuple[str, dict[str, str]], path: str, expected: str
) -> None:
    base, _ = host
    result = await harness.run([one_step("fetch:template", url=base + path, values=VALUES)])
    assert result.error is None, result.error
    assert (harness.workspace / "svc.txt").read_text() == expected
    assert not (harness.workspace / ".git").exists()


async def test_a_commit_id_and_a_file_page(
    harness: Any, one_step: Any, host: tuple[str, dict[str, str]]
) -> None:
    base, commits = host
    url = f"{base}/team/tools/tree/{commits['first']}/skel"
    result = await harness.run([one_step("fetch:template", url=url, values=VALUES)])
    assert result.error is None, result.error
    assert (harness.workspace / "svc.txt").read_text() == "main svc\n"
    file_url = f"{base}/team/tools/blob/main/README.md"
    result = await harness.run(
        [one_step("fetch:plain:file", url=file_url, targetPath="copied/README.md")]
    )
    assert result.error is None, result.error
    assert (harness.workspace / "copied" / "README.md").read_text() == "top\n"


async def test_an_unknown_ref_and_an_escaping_path_are_refused(
    harness: Any, one_step: Any, host: tuple[str, dict[str, str]]
) -> None:
    base, _ = host
    result = await harness.run(
        [one_step("fetch:plain", url=f"{base}/team/tools/tree/nope/skel", targetPath="x")]
    )
    assert result.error is not None
    assert "no branch or tag of" in result.error.message and "'nope/skel'" in result.error.message
    result = await harness.run(
        [one_step("fetch:plain", url=f"{base}/team/tools/tree/main/..%2F..%2Fetc", targetPath="x")]
    )
    assert result.error is not None and result.error.name == "UnsafePathError"


async def test_a_private_repository_takes_the_token_input(
    harness: Any, one_step: Any, host: tuple[str, dict[str, str]]
) -> None:
    base, _ = host
    url = f"{base}/private/tools/tree/main/skel"
    refused = await harness.run([one_step("fetch:template", url=url, values=VALUES)])
    assert refused.error is not None and "git ls-remote" in refused.error.message
    result = await harness.run([one_step("fetch:template", url=url, values=VALUES, token=TOKEN)])
    assert result.error is None, result.error
    assert (harness.workspace / "svc.txt").read_text() == "main2 svc\n"
    # a .git URL too, and the token is in no event
    result = await harness.run(
        [
            one_step(
                "fetch:plain",
                url=f"{base}/private/tools.git?path=skel#v1",
                targetPath="plain",
                token=TOKEN,
            )
        ]
    )
    assert result.error is None, result.error
    assert (harness.workspace / "plain" / "${{ values.name }}.txt").read_text() == (
        "main ${{ values.name }}\n"
    )
    assert TOKEN not in repr(result.io.events) and TOKEN not in repr(refused.io.events)


async def test_a_configured_host_credential_is_used_without_a_token_input(
    harness: Any, one_step: Any, host: tuple[str, dict[str, str]]
) -> None:
    base, _ = host
    netloc = base.removeprefix("http://")
    git = harness.policy(GitPolicy)

    def credential(token: str) -> None:
        item = GitCredential(host=netloc, token=token, owners=("private",))
        with_credential = dataclasses.replace(git, credentials=(item,))
        harness.configure(
            with_credential,
            dataclasses.replace(harness.policy(SourcePolicy), git=with_credential),
        )

    credential(TOKEN)
    url = f"{base}/private/tools/tree/feature/x/skel"
    result = await harness.run([one_step("fetch:template", url=url, values=VALUES)])
    assert result.error is None, result.error
    assert (harness.workspace / "svc.txt").read_text() == "feature svc\n"
    credential("wrong")
    refused = await harness.run([one_step("fetch:template", url=url, values=VALUES)])
    assert refused.error is not None
    # the step's own token wins over the configured one
    result = await harness.run([one_step("fetch:template", url=url, values=VALUES, token=TOKEN)])
    assert result.error is None, result.error
