"""A git repository as template updates use it: trees and commits made with
git's own plumbing (``add`` into a private index, ``commit-tree``), never a
checkout, so the same code serves a bare clone on a server and a developer's
own repository (whose index and working tree stay untouched until asked).

Every git runs through ``falsework.actions.git`` (hardened configuration, own
process group, time limit)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from falsework.actions.git import GitPolicy, Remote, git_result, run_git


@dataclass(frozen=True)
class Author:
    name: str = "Falsework"
    email: str = "falsework@falsework.invalid"


class Repo:
    """One repository: ``git_dir`` is its ``.git`` (or a bare repository), and
    ``work_tree`` its working tree when it has one."""

    def __init__(
        self,
        git_dir: Path,
        policy: GitPolicy,
        *,
        work_tree: Path | None = None,
        author: Author | None = None,
    ) -> None:
        self.git_dir = git_dir
        self.work_tree = work_tree
        self.policy = policy
        self.author = author or Author()

    @classmethod
    async def init_bare(cls, git_dir: Path, policy: GitPolicy) -> Repo:
        """A new, empty bare repository at ``git_dir``."""
        await run_git(policy, ["init", "-q", "--bare", str(git_dir)], cwd=git_dir.parent)
        return cls(git_dir, policy)

    async def borrow_objects(self, path: Path) -> bool:
        """Read the objects of the repository at ``path`` (a folder on this
        machine) in place, as git's alternates, instead of copying them: a fetch
        from it then only writes refs. False (nothing borrowed) when ``path`` is
        not a repository."""
        result = await git_result(
            self.policy,
            ["-C", str(path), "rev-parse", "--path-format=absolute", "--git-common-dir"],
            cwd=self.git_dir,
        )
        if result.code != 0 or not result.out.strip():
            return False
        objects = Path(result.out.strip()) / "objects"
        info = self.git_dir / "objects" / "info"
        await asyncio.to_thread(_append_line, info / "alternates", str(objects))
        return True

    def _args(self, args: Sequence[str]) -> list[str]:
        tree = [f"--work-tree={self.work_tree}"] if self.work_tree is not None else []
        return [f"--git-dir={self.git_dir}", *tree, *args]

    async def git(
        self,
        *args: str,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        remote: Remote | None = None,
    ) -> str:
        """stdout of ``git args``; the failure raised as ``falsework.actions.git`` words it."""
        cwd = self.work_tree or self.git_dir
        return await run_git(
            self.policy, self._args(args), cwd=cwd, env=env, remote=remote, stdin=stdin
        )

    async def code(self, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, str]:
        """(exit code, stdout) of ``git args``, for commands whose code is an answer."""
        cwd = self.work_tree or self.git_dir
        result = await git_result(self.policy, self._args(args), cwd=cwd, env=env)
        return result.code, result.out

    async def rev(self, rev: str) -> str | None:
        """The object ``rev`` names, or None when it names none."""
        # (``<rev>:<path>`` takes everything after the colon as the path)
        name = rev if ":" in rev else f"{rev}^{{object}}"
        code, out = await self.code("rev-parse", "--verify", "-q", name)
        return out.strip() if code == 0 else None

    async def show(self, rev: str, path: str) -> str | None:
        """The text of ``path`` at ``rev``, or None when there is no such file."""
        code, out = await self.code("cat-file", "-p", f"{rev}:{path}")
        return out if code == 0 else None

    async def tree_of_folder(self, folder: Path) -> str:
        """The tree of every file under ``folder`` as ``git add -A`` sees it (its
        ``.gitignore`` files apply, as they did when publish:git pushed it)."""
        with tempfile.TemporaryDirectory(prefix="falsework-index-") as tmp:
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            args = [f"--git-dir={self.git_dir}", f"--work-tree={folder}"]
            await run_git(self.policy, [*args, "add", "-A", "."], cwd=folder, env=env)
            out = await run_git(self.policy, [*args, "write-tree"], cwd=folder, env=env)
        return out.strip()

    async def tree_with(self, tree: str, path: str, data: bytes | None) -> str:
        """``tree`` with ``path`` set to ``data`` (a regular file), or removed when None."""
        with tempfile.TemporaryDirectory(prefix="falsework-index-") as tmp:
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            await self.git("read-tree", tree, env=env)
            if data is None:  # mode 0 removes the entry; --force-remove needs a work tree
                gone = f"0 {'0' * 40}\t{path}\n".encode()
                await self.git("update-index", "--index-info", stdin=gone, env=env)
            else:
                blob = (await self.git("hash-object", "-w", "--stdin", stdin=data)).strip()
                info = f"100644,{blob},{path}"
                await self.git("update-index", "--add", "--cacheinfo", info, env=env)
            return (await self.git("write-tree", env=env)).strip()

    async def commit_tree(
        self, tree: str, parents: Sequence[str], message: str, *, date: str | None = None
    ) -> str:
        """A commit of ``tree``; with ``date`` (git's format: ``@<epoch> +0000``)
        the same inputs always give the same commit, so a rerun finds what an
        earlier run pushed instead of making a second one."""
        env = {
            "GIT_AUTHOR_NAME": self.author.name,
            "GIT_AUTHOR_EMAIL": self.author.email,
            "GIT_COMMITTER_NAME": self.author.name,
            "GIT_COMMITTER_EMAIL": self.author.email,
        }
        if date is not None:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
        args = ["commit-tree", tree, *[a for p in parents for a in ("-p", p)]]
        out = await self.git(*args, stdin=message.encode(), env=env)
        return out.strip()

    async def commit_date(self, rev: str) -> str:
        """``rev``'s committer date in git's raw form (``@<epoch> <zone>``)."""
        out = await self.git("show", "-s", "--date=raw", "--format=%cd", rev)
        return "@" + out.strip()

    async def is_ancestor(self, older: str, newer: str) -> bool:
        code, _ = await self.code("merge-base", "--is-ancestor", older, newer)
        return code == 0

    async def files(self, rev: str) -> list[str]:
        """Every path in ``rev``'s tree."""
        out = await self.git("ls-tree", "-r", "-z", "--name-only", rev)
        return [p for p in out.split("\0") if p]


def _append_line(path: Path, line: str) -> None:
    """Add ``line`` to the file unless it holds it already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and line in path.read_text(encoding="utf-8").splitlines():
        return
    with path.open("a", encoding="utf-8") as file:
        file.write(line + "\n")


# Memory for an update's scratch work when it has room for this much: writing a
# template's files and its render (1,000s of small files) to a busy disk costs
# seconds of metadata I/O, in memory milliseconds (docs/benchmarks.md).
MEMORY_ROOM = 512 * 1024 * 1024
MEMORY_DIRS = (Path("/dev/shm"),)


def scratch_root() -> str | None:
    """Where an update's temporary folders go: the system's temporary folder
    when the operator chose one (``TMPDIR``), else a memory file system
    (``/dev/shm``) with room to spare, else the system's default (None)."""
    if os.environ.get("TMPDIR"):
        return None
    for folder in MEMORY_DIRS:
        try:
            usage = shutil.disk_usage(folder)
        except OSError:
            continue
        if usage.free >= MEMORY_ROOM and os.access(folder, os.W_OK | os.X_OK):
            return str(folder)
    return None
