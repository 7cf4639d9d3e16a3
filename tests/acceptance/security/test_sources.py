"""Red team, sources (issue 8, findings 3 and 11): a plain user (alice) runs a
catalog template whose `fetch:plain` reads a URL she chooses, on a real
`falsework serve`.

- local repositories by path (`git+/abs/path`, `git+file://`, a bare path) only
  under the template folders: not the server's own source tree, not the
  repository another user (bob) published into the remotes folder;
- no remote helper: `ext::` never runs its command, `fd::` never reads the
  server's descriptors;
- git is bounded: a git server that accepts and never answers fails the step at
  FALSEWORK_GIT_TIMEOUT, and cancelling the task kills git with its whole process
  group; no git process is left behind either way.

Egress is about the network, not the database: these servers run on SQLite.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from support.githttp import git
from support.paths import REPO
from support.servers import TEMPLATES, Server, ServerFactory, auth_config, wait_for_status
from support.silent import Silent, silent_server

API = "/api/scaffolder"
SECURITY_TEMPLATES = Path(__file__).resolve().parent / "templates"
SOURCE_TREE = REPO  # the server's own source tree


def config(**extra: Any) -> dict[str, Any]:
    return {**auth_config(), "egress": {"allow": ["127.0.0.1"]}, "git_allow_http": True, **extra}


def start(servers: ServerFactory, **kw: Any) -> Server:
    env = {"FALSEWORK_TEMPLATES": f"{TEMPLATES}:{SECURITY_TEMPLATES}"}
    return servers(None, env=env, **kw)


@pytest.fixture(scope="module")
def short(servers: ServerFactory) -> Server:
    """A server whose git commands may run 3 seconds."""
    return start(servers, config=config(git_timeout=3))


@pytest.fixture(scope="module")
def patient(servers: ServerFactory) -> Server:
    """A server with the default git time limit (120 s)."""
    return start(servers, config=config())


def run(client: httpx.Client, template: str, values: dict[str, Any]) -> str:
    response = client.post(
        f"{API}/v2/tasks", json={"templateRef": f"template:default/{template}", "values": values}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def failure(client: httpx.Client, task_id: str, step: str = "fetch") -> str:
    """The failed step's error event (``Name: message``), once the task failed."""
    wait_for_status(client, task_id, ("failed", "completed", "cancelled"))
    events = client.get(f"{API}/v2/tasks/{task_id}/events").json()
    for event in events:
        body = event["body"]
        if body.get("stepId") == step and body.get("status") == "failed":
            return str(body["message"])
    raise AssertionError(f"step {step} did not fail: {[e['body'] for e in events]}")


def everything(client: httpx.Client, task_id: str) -> str:
    return repr(client.get(f"{API}/v2/tasks/{task_id}/events").json())


def git_processes(server: Server) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if child.name().startswith("git") and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def processes_mentioning(text: str) -> list[psutil.Process]:
    """Any process on the machine whose command line holds ``text`` (git's
    helpers leave the server's tree when git dies: look everywhere)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and any(
                text in part for part in proc.info["cmdline"] or ()
            ):
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


def eventually_none(probe: Any, timeout: float = 10.0) -> list[Any]:
    """Poll ``probe()`` until it returns an empty list (kill -9 is not instant)."""
    deadline = time.monotonic() + timeout
    found: list[Any] = probe()
    while found and time.monotonic() < deadline:
        time.sleep(0.05)
        found = probe()
    return found


# ------------------------------------------------------------ local by path


@pytest.fixture(scope="module")
def bobs_repository(patient: Server) -> Path:
    """bob publishes a repository into the server's remotes folder."""
    bob = patient.client("bob")
    task_id = run(bob, "egress-publish", {"remote": "bob-private.git"})
    task = wait_for_status(bob, task_id, ("completed", "failed"))
    assert task["status"] == "completed", everything(bob, task_id)
    path = patient.log.parent / "data" / "remotes" / "bob-private.git"
    assert git("rev-parse", "--is-bare-repository", cwd=path) == "true"
    return path


# The forms a git URL gives a local path in (finding 3: these were cloned), and
# those that were refused already (kept refused: the same rule covers them all).
GIT_PATHS = ["git+{path}", "git+{path}#main", "git+{path}?path=.#main"]
ALREADY_REFUSED = ["git+file://{path}", "{path}", "file://{path}", "git+file://localhost{path}"]


@pytest.mark.parametrize("form", GIT_PATHS + ALREADY_REFUSED)
def test_another_users_published_repository_is_out_of_reach(
    patient: Server, bobs_repository: Path, form: str
) -> None:
    alice = patient.client("alice")
    task_id = run(alice, "sources-fetch", {"url": form.format(path=bobs_repository)})
    message = failure(alice, task_id)
    assert message.startswith("UnsafePathError: "), message
    assert "not under an allowed template folder" in message


@pytest.mark.parametrize("form", ["git+{path}", "git+{path}/.git", *ALREADY_REFUSED])
def test_the_servers_own_source_tree_is_out_of_reach(patient: Server, form: str) -> None:
    alice = patient.client("alice")
    task_id = run(alice, "sources-fetch", {"url": form.format(path=SOURCE_TREE)})
    message = failure(alice, task_id)
    assert message.startswith("UnsafePathError: "), message
    assert "pyproject" not in everything(alice, task_id)


def test_a_relative_git_path_is_refused(patient: Server) -> None:
    alice = patient.client("alice")
    for url in ("git+data/remotes/bob-private.git", "git@data/remotes/x.git"):
        message = failure(alice, run(alice, "sources-fetch", {"url": url}))
        assert message.startswith("UnsafePathError: "), message


# ------------------------------------------------------------ remote helpers


def test_ext_never_runs_its_command(patient: Server, tmp_path: Path) -> None:
    canary = tmp_path / "CANARY"
    alice = patient.client("alice")
    for url in (
        f"git+ext::sh -c 'touch {canary}'",
        f"git+ext::sh -c touch% {canary}",
        f"git+EXT::sh -c touch% {canary}",
    ):
        message = failure(alice, run(alice, "sources-fetch", {"url": url}))
        assert message.startswith("ActionError: "), message
        assert "never allowed" in message
    assert not canary.exists()


def test_fd_is_refused_at_once(patient: Server) -> None:
    alice = patient.client("alice")
    for url in ("git+fd::0", "git+fd::1,2", "git+fd::7/x"):
        message = failure(alice, run(alice, "sources-fetch", {"url": url}))
        assert "never allowed" in message, message
    assert git_processes(patient) == []


@pytest.mark.parametrize("url", ["git+git://127.0.0.1:9/x.git", "git+ftp://127.0.0.1/x.git"])
def test_other_transports_are_refused(patient: Server, url: str) -> None:
    alice = patient.client("alice")
    message = failure(alice, run(alice, "sources-fetch", {"url": url}))
    assert message.startswith("ActionError: ") and "not allowed" in message, message


# ------------------------------------------------------------ time limits


@pytest.fixture
def silent() -> Iterator[Silent]:
    with silent_server() as server:
        yield server


def test_a_git_server_that_never_answers_fails_at_the_time_limit(
    short: Server, silent: Silent
) -> None:
    alice = short.client("alice")
    url = f"http://127.0.0.1:{silent.port}/team/never.git"
    message = failure(alice, run(alice, "sources-fetch", {"url": url}))
    assert message.startswith("UnreachableError: Could not reach "), message
    assert silent.connected.is_set()  # git did connect, then was stopped
    assert eventually_none(lambda: git_processes(short)) == []
    assert eventually_none(lambda: processes_mentioning(f":{silent.port}/")) == []


def test_cancelling_the_task_kills_git_and_its_helpers(patient: Server, silent: Silent) -> None:
    alice = patient.client("alice")
    url = f"http://127.0.0.1:{silent.port}/team/never.git"
    task_id = run(alice, "sources-fetch", {"url": url})
    assert silent.connected.wait(30)
    assert processes_mentioning(f":{silent.port}/") != []  # git-remote-http is waiting
    assert alice.post(f"{API}/v2/tasks/{task_id}/cancel").status_code == 200
    assert wait_for_status(alice, task_id, ("cancelled",))["status"] == "cancelled"
    assert eventually_none(lambda: git_processes(patient)) == []
    assert eventually_none(lambda: processes_mentioning(f":{silent.port}/")) == []
