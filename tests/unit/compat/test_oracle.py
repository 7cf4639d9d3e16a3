"""Falsework answers each compatibility case as the real Backstage did.

The oracle's answers are recorded in ``oracle/`` (see ``record.py``); here the
same case runs through Falsework's dry run and through a real run, and what a
template or a client can see must be equal: the log (every line, in order), the
files written and the template's output.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from falsework.actions import ActionRegistry
from falsework.runner import DefaultEnvironment, LocalTask, MemoryTaskIO, WorkflowRunner
from falsework.runner.dry_run import read_files, write_files
from falsework.templating import Renderer
from support.compat.oracle_cases import (
    Case,
    case_names,
    normalise,
    oracle_environment,
    real_run_names,
    without_known_differences,
)

DRY_RUN_ONLY = (" in dry-run mode with inputs ", " does not support dry-run")  # a dry run's only


@pytest.fixture
def runner(tmp_path: Path) -> WorkflowRunner:
    environment = oracle_environment()
    return WorkflowRunner(
        ActionRegistry.builtin(),
        Renderer(),
        work_dir=tmp_path / "work",
        environment=DefaultEnvironment(environment["parameters"], environment["secrets"]),
    )


@pytest.mark.parametrize("name", case_names())
async def test_dry_run_answers_as_backstage(name: str, runner: WorkflowRunner) -> None:
    case = Case.load(name)
    status, body = case.recorded()
    expected = normalise(status, body)
    result = await runner.dry_run(
        case.template, case.values, case.secrets, case.directory_contents()
    )
    if status != 200:  # the step failed with the same error (its status: test_api.py)
        assert result["error"]["name"] == body["error"]["name"]
        return
    got = normalise(200, result)
    if "log" in expected:
        expected["log"] = without_known_differences(expected["log"])
        got["log"] = without_known_differences(got["log"])
    assert got == expected


def _real_run_view(expected: dict[str, Any]) -> dict[str, Any]:
    log = [
        entry
        for entry in without_known_differences(expected["log"])
        if not any(part in entry["message"] for part in DRY_RUN_ONLY)
    ]
    return {**expected, "log": log}


@pytest.mark.parametrize("name", real_run_names())
async def test_real_run_answers_as_backstage(
    name: str, runner: WorkflowRunner, tmp_path: Path
) -> None:
    """The same template run for real (its steps all dry-run-capable, so what a
    real run does is what the dry run showed)."""
    case = Case.load(name)
    status, body = case.recorded()
    expected = normalise(status, body)
    template_dir = tmp_path / "template"
    await asyncio.to_thread(write_files, template_dir, case.directory_contents())
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    spec = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "steps": case.template["spec"]["steps"],
        "output": case.template["spec"].get("output") or {},
        "parameters": case.values,
        "user": {},
        "templateInfo": {"baseUrl": (template_dir / "template.yaml").as_uri()},
    }
    io = MemoryTaskIO()
    output = await runner.run(
        LocalTask(spec=spec, secrets=dict(case.secrets)), io, workspace=workspace
    )
    files = await asyncio.to_thread(read_files, workspace)
    got = normalise(
        200,
        {"log": [{"body": b} for _, b in io.events], "directoryContents": files, "output": output},
    )
    got["log"] = [
        {**e, "message": e["message"].replace(str(workspace), "<workspace>")}
        for e in without_known_differences(got["log"])
    ]
    assert got == _real_run_view(expected)


async def test_copy_without_render_is_honoured_with_a_warning(runner: WorkflowRunner) -> None:
    """Backstage (>= 2.0) ignores copyWithoutRender and renders the file (the
    recording shows `${{ github.sha }}` rendered away); Falsework keeps the file
    as it is, as templates written for Backstage 1.x expect, and says in a warning
    which file it is and how to spell it portably."""
    case = Case.load("copy-without-render")
    backstage = normalise(*case.recorded())
    result = normalise(
        200,
        await runner.dry_run(case.template, case.values, case.secrets, case.directory_contents()),
    )
    assert backstage["files"][".github/workflows/ci.yaml"] == "run: echo \n"
    assert result["files"][".github/workflows/ci.yaml"] == "run: echo ${{ github.sha }}\n"
    assert result["files"]["README.md"] == backstage["files"]["README.md"] == "# svc\n"
    warnings = [e["message"] for e in result["log"] if "warn" in e["message"]]
    assert warnings == [
        "\u001b[33mwarn\u001b[39m: .github/workflows/ci.yaml is copied as it is because of "
        "copyWithoutRender, which Backstage 2.0 and later ignore (they render this file): "
        "spell it copyWithoutTemplating to get the same on both"
    ]
    # and says it copies the file, where Backstage writes the rendered one
    copied = "\u001b[32minfo\u001b[39m: Copying file/directory .github/workflows/ci.yaml without"
    others = [e for e in result["log"] if "warn" not in e["message"] and copied not in e["message"]]
    assert without_known_differences(others) == without_known_differences(backstage["log"])


async def test_secrets_are_masked_where_they_show(runner: WorkflowRunner) -> None:
    """Backstage masks each whole string a secret went into (`token=*** length=18`
    becomes `***`) and even the keys holding one (`{"***":"***"}`); Falsework masks
    the secret itself, wherever it would show, and nothing else. The rest is equal:
    the dry-run line, the files (the action got the real value) and the output."""
    case = Case.load("secrets")
    backstage = normalise(*case.recorded())
    raw = await runner.dry_run(case.template, case.values, case.secrets, case.directory_contents())
    result = normalise(200, raw)
    secret = case.secrets["token"]
    assert secret not in str(raw["log"]) and secret not in str(raw["output"])
    assert result["files"] == backstage["files"] == {"config.txt": f"token: {secret}\n"}
    assert result["output"] == backstage["output"]
    messages = [e["message"] for e in without_known_differences(result["log"])]
    assert "\u001b[32minfo\u001b[39m: token=*** length=18" in messages
    assert "\u001b[32minfo\u001b[39m: ***" in [e["message"] for e in backstage["log"]]
    different = [
        (ours, theirs)
        for ours, theirs in zip(
            messages,
            [e["message"] for e in without_known_differences(backstage["log"])],
            strict=True,
        )
        if ours != theirs
    ]
    assert len(different) == 3  # debug:log's two lines and fetch:template's values
