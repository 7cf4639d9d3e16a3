"""A bare git repository as the forge models keep it (the server's git side serves it
with ``git http-backend``): its branches, default branch and files, read with git; and
the state every forge model shares (its tokens, repositories and URL)."""

from __future__ import annotations

import itertools
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.forge.contract import Contract
from support.forge.server import HttpError


class BareRepo:
    """Mixed into a forge model's repository record (which has ``path``)."""

    path: Path

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", f"--git-dir={self.path}", *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise HttpError(404, done.stderr.strip() or "git failed")
        return done.stdout

    def branches(self) -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def default_branch(self) -> str:
        head = self.git("symbolic-ref", "--short", "HEAD").strip()
        branches = self.branches()
        if head not in branches and len(branches) == 1:
            # GitHub makes the first branch pushed to an empty repository its default
            head = next(iter(branches))
            self.git("symbolic-ref", "HEAD", f"refs/heads/{head}")
        return head

    def read(self, ref: str, path: str) -> bytes:
        done = subprocess.run(
            ["git", f"--git-dir={self.path}", "show", f"{ref}:{path}"],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise HttpError(404, "Not Found")
        return done.stdout


def seed_bare(bare: Path, branch: str, files: dict[str, str], message: str) -> None:
    """Commit ``files`` onto ``branch`` of a bare repository (no work tree needed)."""
    env = {
        "GIT_AUTHOR_NAME": "Forge",
        "GIT_AUTHOR_EMAIL": "forge@forge.test",
        "GIT_COMMITTER_NAME": "Forge",
        "GIT_COMMITTER_EMAIL": "forge@forge.test",
        "PATH": "/usr/bin:/bin",
    }
    git = ["git", f"--git-dir={bare}"]
    index = {**env, "GIT_INDEX_FILE": str(bare / "seed.index")}
    for name, text in files.items():
        blob = (
            subprocess.run(
                [*git, "hash-object", "-w", "--stdin"],
                input=text.encode(),
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        subprocess.run(
            [*git, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}"],
            check=True,
            env=index,
        )
    tree = subprocess.run(
        [*git, "write-tree"], capture_output=True, text=True, check=True, env=index
    ).stdout.strip()
    (bare / "seed.index").unlink()
    commit = subprocess.run(
        [*git, "commit-tree", tree, "-m", message],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    subprocess.run([*git, "update-ref", f"refs/heads/{branch}", commit], check=True)


@dataclass
class HostedRepo(BareRepo):
    """A repository of a forge with no more to it than its settings (Gitea, Bitbucket)."""

    id: int
    owner: str
    name: str
    path: Path
    settings: dict[str, Any] = field(default_factory=dict)
    pulls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def init_bare(path: Path, branch: str = "main") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", branch, str(path)], check=True)


class RepoHost:
    """The part of a forge model that is the same on every forge: ``tokens`` maps a
    token (or password) to a user name; repositories are kept by ``owner/name``."""

    taken_status = 409  # how the host refuses a name already taken

    def __init__(self, contract: Contract, root: Path, tokens: dict[str, str]) -> None:
        self.contract = contract
        self.root = root
        self.tokens = tokens
        self.repos: dict[str, HostedRepo] = {}
        self.url = "http://forge.invalid"
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def bind(self, url: str) -> None:
        self.url = url

    def user_of(self, token: str) -> str | None:
        return self.tokens.get(token)

    def repo_dir(self, owner: str, repo: str) -> Path | None:
        found = self.repos.get(f"{owner}/{repo}".lower())
        return found.path if found else None

    def new_repo(self, owner: str, name: str, settings: dict[str, Any], branch: str) -> HostedRepo:
        """A repository with an empty bare git repository; refused when the name is
        taken (each host words its refusal: ``taken_status``, ``taken``)."""
        with self._lock:
            key = f"{owner}/{name}".lower()
            if key in self.repos:
                raise HttpError(self.taken_status, self.taken(name))
            path = self.root / owner / f"{name}.git"
            init_bare(path, branch)
            repo = HostedRepo(next(self._ids), owner, name, path, dict(settings))
            self.repos[key] = repo
        return repo

    def taken(self, name: str) -> str:
        return f"{name} already exists"
