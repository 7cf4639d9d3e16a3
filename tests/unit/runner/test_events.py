"""Event shapes against real Backstage recordings."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from support.paths import REPO

# shared/ lies beside the repository (CI clones it elsewhere with a copy of shared/
# beside it); the developers' machine keeps it at /work/shared.
_BESIDE = REPO.parent / "shared" / "reference" / "backstage-api"
REFERENCE = _BESIDE if _BESIDE.is_dir() else Path("/work/shared/reference/backstage-api")


def recorded(name: str) -> list[dict[str, Any]]:
    return [e["body"] for e in json.loads((REFERENCE / f"{name}.events.json").read_text())["body"]]


def spec_of(template: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    doc = yaml.safe_load(template.read_text())
    return {
        "apiVersion": doc["apiVersion"],
        "steps": doc["spec"]["steps"],
        "output": doc["spec"].get("output", {}),
        "parameters": parameters,
        "user": {},
        "templateInfo": {"baseUrl": template.as_uri()},
    }


async def test_debug_log_events_match_backstage(harness: Any) -> None:
    task = harness.task([])
    task.spec = spec_of(REFERENCE / "templates-used/debug-log.yaml", {"name": "world"})
    result = await harness.run(task)
    expected = recorded("debug-log")
    assert result.bodies() == expected[:-1]
    assert result.output == expected[-1]["output"]


def copy_template(tmp: Path) -> Path:
    shutil.copytree(REFERENCE / "templates-used", tmp / "t")
    for path in (tmp / "t").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tmp / "t" / "fetch-template.yaml"


async def test_fetch_template_events_match_backstage(harness: Any, tmp_path: Path) -> None:
    template = copy_template(tmp_path)
    task = harness.task([])
    task.spec = spec_of(template, {"name": "my-svc", "description": "Sample service"})
    result = await harness.run(task)
    expected = recorded("fetch-template")
    where = re.compile(r"written to \S+")
    normal = [
        {**b, "message": where.sub("written to <dir>", b["message"])} for b in result.bodies()
    ]
    want = [{**b, "message": where.sub("written to <dir>", b["message"])} for b in expected[:-1]]
    assert normal == want
    assert result.output == expected[-1]["output"]
