"""Every documented example of every built-in action runs, for real.

Placeholder hosts in the examples are pointed at real loopback stand-ins: the
Argo URL at a local HTTP server, git remotes at a local bare repository (in the
harness's remotes folder).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from falsework.actions import ActionRegistry

# The forge and Backstage families' examples run against a loopback forge and a real
# Backstage catalog in their own test modules (test_github.py, test_gitlab.py, …,
# test_catalog_backstage.py); scaffold:update's need a repository made from a
# versioned template (tests/support/updates.py).
FORGE_FAMILIES = (
    "scaffold:",
    "github:",
    "publish:github",
    "publish:gitlab",
    "publish:gitea",
    "publish:bitbucket",
    "publish:azure",
    "catalog:register",
    "catalog:fetch",
    "http:backstage:",
)
EXAMPLES = [
    pytest.param(item.id, index, id=f"{item.id}#{index}")
    for item in ActionRegistry.builtin().list()
    if not item.id.startswith(FORGE_FAMILIES)
    for index in range(len(item.examples))
]


def test_every_builtin_has_examples() -> None:
    assert all(item.examples for item in ActionRegistry.builtin().list())


@pytest.fixture
def world(harness: Any, tmp_path: Path) -> dict[str, Path]:
    tpl: Path = harness.template_dir
    for rel, text in {
        "skeleton/README.md": "# ${{ values.name }}\n",
        "skeleton/.github/workflows/ci.yaml": "runs-on: ${{ github.x }}\n",
        "cookiecutter/{{ cookiecutter.name }}/README.md": "# {{ cookiecutter.name }}\n",
    }.items():
        (tpl / rel).parent.mkdir(parents=True, exist_ok=True)
        (tpl / rel).write_text(text)
    ws: Path = harness.workspace
    for rel in ("file1.txt", "file2.txt", "file2-renamed.txt", "x.log", "docs/a.md", "service/b"):
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(rel)
    bare = tmp_path / "remotes" / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    return {"bare": bare}


@pytest.mark.parametrize(("action_id", "index"), EXAMPLES)
async def test_example_runs(
    harness: Any, world: dict[str, Path], request: pytest.FixtureRequest, action_id: str, index: int
) -> None:
    example = ActionRegistry.builtin().get(action_id).examples[index]
    argo = request.getfixturevalue("argo") if action_id == "http:request" else None
    text = example.example.replace("https://argo.example.com", argo.url if argo else "").replace(
        "https://git.example.com/team/my-service.git", world["bare"].as_uri()
    )
    steps = yaml.safe_load(text)["steps"]
    if argo is not None and "until" in steps[0]["input"]:
        argo.polls = 2  # the workflow finishes on the next poll
        steps[0]["input"]["interval"] = 0.01
    result = await harness.run(steps, secrets={"ARGO_TOKEN": "t", "GIT_TOKEN": "t"})
    assert result.error is None, result.error
    assert [s.get("status") for s in result.steps.values()] == ["completed"] * len(steps)
