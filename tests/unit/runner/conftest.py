"""The runner's harness: test actions and a real runner (tests/support/runner.py)."""

from __future__ import annotations

from support.runner import harness, registry, renderer

__all__ = ["harness", "registry", "renderer"]  # fixtures
