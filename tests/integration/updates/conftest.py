"""A template kept in a real git repository (tests/support/updates.py)."""

from __future__ import annotations

from support.updates import template_repo

__all__ = ["template_repo"]  # fixtures
