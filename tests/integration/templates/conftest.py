"""Template folders written for a test (tests/support/templates.py)."""

from __future__ import annotations

from support.templates import write_template

__all__ = ["write_template"]  # fixtures
