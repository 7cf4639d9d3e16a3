"""Fixtures of the `falsework templates test` tests: a copy of the example
templates (with their cases and snapshots) to break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from falsework.config import EXAMPLES_DIR


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A copy of the example templates, their cases and snapshots included."""
    target = tmp_path / "templates"
    shutil.copytree(EXAMPLES_DIR, target, symlinks=True)
    return target
