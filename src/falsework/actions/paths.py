"""The one safe-path helper every user-supplied path goes through.

A path is refused when it is absolute, climbs with ``..`` past its base, or
reaches outside the base through a symlink (the check is made on the fully
resolved path, so a link planted by an earlier step cannot be used to escape).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from falsework.errors import UnsafePathError


def resolve_safe_path(base: Path, user_path: str | os.PathLike[str]) -> Path:
    """Return ``base/user_path`` when it stays inside ``base``, else raise
    ``UnsafePathError`` naming the path. ``""`` and ``"."`` mean the base itself."""
    text = os.fspath(user_path)
    if "\x00" in text:
        raise UnsafePathError(f"Path {text!r} contains a NUL byte")
    if os.path.isabs(text) or PurePosixPath(text.replace("\\", "/")).is_absolute():
        raise UnsafePathError(
            f"Path {text!r} is absolute; only paths inside the workspace are allowed"
        )
    root = os.path.realpath(base)
    target = os.path.realpath(os.path.join(root, text))
    if target != root and not target.startswith(root + os.sep):
        raise UnsafePathError(f"Path {text!r} is outside the workspace")
    # Keep the caller's spelling (a link inside the workspace stays a link, so
    # fs:delete removes the link, not what it points to).
    return Path(os.path.normpath(os.path.join(root, text)))


def is_within(root: Path, path: Path) -> bool:
    """True when ``path`` (resolved) is ``root`` or below it."""
    r = os.path.realpath(root)
    p = os.path.realpath(path)
    return os.path.commonpath([r, p]) == r
