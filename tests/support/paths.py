"""Where things are in the repository, for the tests that read its files: one
constant instead of a ``Path(__file__).parents[N]`` per test module (whose N
changes when a module moves between tiers)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
DOCS = REPO / "docs"
DEPLOY = REPO / "deploy"
EXAMPLES = REPO / "examples" / "templates"
