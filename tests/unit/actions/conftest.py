"""The actions' harness: a real runner on a work folder (tests/support/actions.py)."""

from __future__ import annotations

from support.actions import harness, one_step, renderer

__all__ = ["harness", "one_step", "renderer"]  # fixtures
