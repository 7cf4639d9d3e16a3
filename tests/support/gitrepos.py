"""Real git repositories holding symbolic links, for the workspace-confinement tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def write_tree(root: Path, files: dict[str, str], links: dict[str, str] | None = None) -> Path:
    """Files (path → text) and symbolic links (path → target, kept as written)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for rel, target in (links or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
    return root


def make_repo(
    bare: Path, files: dict[str, str], links: dict[str, str] | None = None, *, work: Path
) -> str:
    """A bare repository at ``bare`` (``….git``) with one commit of ``files`` and
    ``links`` (committed as links, git's mode 120000), built in the folder
    ``work``; its ``file://`` URL."""
    write_tree(work, files, links)
    env = {**os.environ, **GIT_ENV}
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "core.symlinks", "true"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "content"],
    ):
        subprocess.run(cmd, cwd=work, check=True, env=env, capture_output=True)
    bare.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work), str(bare)],
        check=True,
        env=env,
        capture_output=True,
    )
    return bare.as_uri()
