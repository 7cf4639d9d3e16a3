"""publish:github:pull-request lays the workspace over a checkout of the remote: that
checkout is someone else's content and is written like a workspace (no link in it is
written through, its .git never touched); the pushed folder's links are checked as
publish:git's are. Against the loopback GitHub of tests/support/forge."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.forge import ForgeServer, GitHub, seed
from support.forge.harness import ForgeRunner, forge_runner, git, step
from support.gitrepos import GIT_ENV

TOKEN = "ghs_integration_token_123"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[ForgeServer]:
    host = GitHub(tmp_path / "forge", tokens={TOKEN: "robot"}, owners={"acme": "Organization"})
    server = ForgeServer(host).start()
    yield server
    server.stop()
    assert server.take_violations() == []


@pytest.fixture
def gh(forge: ForgeServer, tmp_path: Path) -> ForgeRunner:
    return forge_runner(tmp_path / "run", forge, token=TOKEN)


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    folder = tmp_path / "canary"
    folder.mkdir()
    (folder / "secret.txt").write_text("CANARY")
    return folder


def untouched(canary: Path) -> bool:
    return os.listdir(canary) == ["secret.txt"] and (canary / "secret.txt").read_text() == "CANARY"


def seed_link(bare: Path, work: Path, name: str, target: str) -> None:
    """Add a commit holding the link ``name -> target`` to main of ``bare``."""
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, env=env)
    os.symlink(target, work / name)
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "link"], ["git", "push", "-q"]):
        subprocess.run(cmd, cwd=work, check=True, env=env, capture_output=True)


def pull_request(forge: ForgeServer, **extra: Any) -> dict[str, Any]:
    return step(
        "publish:github:pull-request",
        "pr",
        repoUrl=f"{forge.netloc}?owner=acme&repo=catalog",
        branchName="add-svc",
        title="Add svc",
        description="d",
        **extra,
    )


async def test_a_link_in_the_remote_is_never_written_through(
    forge: ForgeServer, gh: ForgeRunner, canary: Path, tmp_path: Path
) -> None:
    assert isinstance(forge.host, GitHub)
    repo = forge.host.add_repo("acme", "catalog")
    seed(repo, "main", {"README.md": "catalog\n"})
    seed_link(repo.path, tmp_path / "seeding", "services", str(canary))
    gh.write({"services/planted.txt": "p"})
    run = await gh.run([pull_request(forge)])
    assert run.error is not None and run.error.name == "UnsafePathError", run.logs()
    assert "leads outside the repository" in run.error.message
    assert untouched(canary) and repo.pulls == []


@pytest.mark.parametrize(
    "extra", [{"targetPath": ".git"}, {"targetPath": "a/.git/x"}, {"filesToDelete": [".git"]}]
)
async def test_the_checkouts_git_folder_is_never_written(
    forge: ForgeServer, gh: ForgeRunner, extra: dict[str, Any]
) -> None:
    assert isinstance(forge.host, GitHub)
    repo = forge.host.add_repo("acme", "catalog")
    seed(repo, "main", {"README.md": "catalog\n"})
    gh.write({"config": '[url "http://elsewhere/"]\n\tinsteadOf = http://\n'})
    run = await gh.run([pull_request(forge, **extra)])
    assert run.error is not None and run.error.name == "UnsafePathError", run.logs()
    assert "inside the repository's .git folder" in run.error.message
    assert repo.pulls == [] and "add-svc" not in git(repo.path, "branch")


async def test_a_pushed_folder_with_a_link_outside_it_is_refused(
    forge: ForgeServer, gh: ForgeRunner
) -> None:
    assert isinstance(forge.host, GitHub)
    repo = forge.host.add_repo("acme", "catalog")
    seed(repo, "main", {"README.md": "catalog\n"})
    gh.write({"svc/a.txt": "a"})
    (gh.workspace / "svc/passwd").symlink_to("/etc/passwd")
    run = await gh.run([pull_request(forge, sourcePath="svc")])
    assert run.error is not None and run.error.name == "UnsafePathError", run.logs()
    assert "svc/passwd -> /etc/passwd: a symbolic link may not point outside" in (run.error.message)
    assert repo.pulls == []
