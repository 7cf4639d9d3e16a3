"""Dry runs: the shape POST /v2/dry-run returns."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from falsework.errors import UnsafePathError

TEMPLATE = {
    "apiVersion": "scaffolder.backstage.io/v1beta3",
    "kind": "Template",
    "metadata": {"name": "svc"},
    "spec": {
        "steps": [
            {
                "id": "fetch",
                "name": "Fetch",
                "action": "fetch:template",
                "input": {"url": "./skeleton", "values": {"name": "${{ parameters.name }}"}},
            },
            {
                "id": "publish",
                "name": "Publish",
                "action": "publish:git",
                "input": {"remoteUrl": "https://git.example.com/x.git"},
            },
            {
                "id": "log",
                "name": "Log",
                "action": "debug:log",
                "input": {"message": "at ${{ steps.publish.output.remoteUrl }}"},
            },
        ],
        "output": {"links": [{"title": "Repo", "url": "${{ steps.publish.output.remoteUrl }}"}]},
    },
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


FILES = [
    {"path": "template.yaml", "base64Content": b64("kind: Template\n")},
    {"path": "skeleton/README.md", "base64Content": b64("# ${{ values.name }}\n")},
    {
        "path": "skeleton/run.sh",
        "base64Content": b64("echo ${{ values.name }}\n"),
        "executable": True,
    },
]


async def test_dry_run_shape(harness: Any) -> None:
    result = await harness.runner.dry_run(TEMPLATE, {"name": "svc"}, {}, FILES)
    assert set(result) == {"log", "directoryContents", "output", "steps"}
    assert result["directoryContents"] == [
        {"path": "README.md", "base64Content": b64("# svc\n"), "executable": False},
        {"path": "run.sh", "base64Content": b64("echo svc\n"), "executable": True},
    ]
    assert result["output"] == {"links": [{"title": "Repo", "url": "<example>"}]}
    assert [(s["id"], s["name"], s["action"], s["status"]) for s in result["steps"]] == [
        ("fetch", "Fetch", "fetch:template", "completed"),
        ("publish", "Publish", "publish:git", "skipped"),  # cannot dry-run: skipped
        ("log", "Log", "debug:log", "completed"),
    ]
    messages = [entry["body"]["message"] for entry in result["log"]]
    assert messages[0] == "Starting up task with 3 steps"
    assert any("Skipping because publish:git does not support dry-run" in m for m in messages)
    assert "\u001b[32minfo\u001b[39m: at <example>" in messages


async def test_dry_run_reports_a_failing_step(harness: Any) -> None:
    steps = [
        {"id": "f", "action": "fetch:template", "input": {"url": "./nope"}},
        {"id": "n", "action": "debug:log", "input": {"message": "hi"}},
    ]
    template = {"metadata": {"name": "x"}, "spec": {"steps": steps}}
    result = await harness.runner.dry_run(template, {}, {}, [])
    assert [s["status"] for s in result["steps"]] == ["failed", "skipped"]
    assert result["error"]["name"] == "ActionError"
    assert any(e["body"].get("status") == "failed" for e in result["log"])


async def test_dry_run_refuses_escaping_files(harness: Any) -> None:
    bad = [{"path": "../../evil.txt", "base64Content": b64("x")}]
    with pytest.raises(UnsafePathError):  # the API maps it to a 400
        await harness.runner.dry_run(TEMPLATE, {}, {}, bad)
