"""The actions' harness (tests/support/actions.py) and the loopback Argo stand-in
(tests/support/argo.py)."""

from __future__ import annotations

from support.actions import harness, one_step, renderer
from support.argo import argo

__all__ = ["argo", "harness", "one_step", "renderer"]  # fixtures
