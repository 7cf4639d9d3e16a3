"""A copy of the example templates (tests/support/templates_test.py)."""

from __future__ import annotations

from support.templates_test import examples

__all__ = ["examples"]  # fixtures
