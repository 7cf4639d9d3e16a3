"""The actions' harness and the loopback Argo stand-in (tests/support/actions.py)."""

from __future__ import annotations

from support.actions import argo, harness, one_step, renderer

__all__ = ["argo", "harness", "one_step", "renderer"]  # fixtures
