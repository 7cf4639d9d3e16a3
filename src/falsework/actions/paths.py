"""The safe-path checks actions import: they live in :mod:`falsework.confine`,
the one module of the workspace confinement rule (file operations themselves
go through its ``Tree``)."""

from __future__ import annotations

from falsework.confine import is_within, resolve_safe_path

__all__ = ["is_within", "resolve_safe_path"]
