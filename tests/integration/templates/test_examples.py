"""The shipped example templates run end to end through the real runner and actions."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from falsework.actions import ActionRegistry
from falsework.actions.policies import PublishPolicy, SourcePolicy
from falsework.config import EXAMPLES_DIR
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
from falsework.templates import TemplateCatalog, validate_values
from falsework.templating import Renderer


async def run_example(
    name: str, values: dict[str, Any], tmp_path: Path, *, remotes: Path | None = None
) -> tuple[dict[str, Any] | TaskFailedError, MemoryTaskIO, Path]:
    template = TemplateCatalog([EXAMPLES_DIR]).get(name)
    spec = template.task_spec(validate_values(template, values), {})
    policies = (
        SourcePolicy(roots=(EXAMPLES_DIR,)),
        PublishPolicy(remotes_dir=remotes or tmp_path / "remotes"),
    )
    runner = WorkflowRunner(
        ActionRegistry.default(policies), Renderer(), work_dir=tmp_path / "work"
    )
    io = MemoryTaskIO()
    workspace = tmp_path / "workspace"
    workspace.mkdir(parents=True)
    try:
        result: dict[str, Any] | TaskFailedError = await runner.run(
            LocalTask(spec=spec), io, workspace=workspace
        )
    except TaskFailedError as exc:
        result = exc
    return result, io, workspace


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository to push to, in the runner's remotes folder."""
    path = tmp_path / "remotes" / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


def show(remote: Path, path: str) -> str:
    """A file of the pushed ``main`` branch."""
    return subprocess.run(
        ["git", "--git-dir", str(remote), "show", f"main:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def statuses(io: MemoryTaskIO) -> dict[str, str]:
    found: dict[str, str] = {}
    for _, body in io.events:
        if "stepId" in body and "status" in body:
            found[body["stepId"]] = body["status"]
    return found


async def test_hello_world(tmp_path: Path) -> None:
    output, io, _ = await run_example("hello-world", {"name": "Ada"}, tmp_path)
    assert output == {"text": [{"title": "Greeting", "content": "Hello, Ada!"}]}
    assert statuses(io) == {"greet": "completed"}


async def test_wait(tmp_path: Path) -> None:
    output, io, _ = await run_example("wait", {"seconds": 0}, tmp_path)
    assert output == {"text": [{"title": "Result", "content": "Waited 0 seconds."}]}
    assert statuses(io) == {"wait": "completed", "done": "completed"}


@pytest.mark.parametrize(
    ("failure", "failing_step", "skipped"),
    [
        ("missing-file", "fetch-missing", ["delete-outside", "never"]),
        ("outside-workspace", "delete-outside", ["fetch-missing", "never"]),
    ],
)
async def test_fail(tmp_path: Path, failure: str, failing_step: str, skipped: list[str]) -> None:
    result, io, _ = await run_example("fail", {"failure": failure}, tmp_path)
    assert isinstance(result, TaskFailedError)
    found = statuses(io)
    assert found[failing_step] == "failed"
    for step in skipped:
        assert found[step] == "skipped"
    assert found["start"] == found["report"] == found["cleanup"] == "completed"


async def test_python_service_renders_and_pushes(tmp_path: Path, remote: Path) -> None:
    values = {
        "name": "my-svc",
        "owner": "group:default/team",
        "repoUrl": "github.com?owner=acme&repo=my-svc",
        "remoteUrl": str(remote),
    }
    output, io, workspace = await run_example("python-service", values, tmp_path)
    assert isinstance(output, dict), output
    assert set(statuses(io).values()) == {"completed"}

    assert show(remote, "service.yaml") == (
        "# Settings read by the service at start-up.\n"
        "name: my-svc\n"
        'description: "A Python service."\n'
        'tags: ["python"]\n'
        'python: "3.12"\n'
        "container:\n"
        "  port: 8000\n"
    )
    assert 'name = "my-svc"' in show(remote, "pyproject.toml")
    assert "def greet" in show(remote, "src/my_svc/app.py")
    assert show(remote, "tests/test_app.py").startswith("from my_svc.app import greet")
    assert show(remote, "Dockerfile").startswith("FROM python:3.12-slim")
    workflow = show(remote, ".github/workflows/ci.yaml")
    assert "${{ github.sha }}" in workflow
    assert "${{ matrix.python-version }}" in workflow
    catalog = show(remote, "catalog-info.yaml")
    assert "github.com/project-slug: acme/my-svc" in catalog
    assert "owner: group:default/team" in catalog
    links = {link["title"]: link for link in output["links"]}
    assert links["Open in catalog"]["entityRef"] == "component:default/my-svc"
    assert str(remote) in output["text"][0]["content"]
    assert "docker build -t my-svc ." in output["text"][0]["content"]
    assert (workspace / "README.md").read_text().startswith("# my-svc\n")


async def test_python_service_without_docker(tmp_path: Path, remote: Path) -> None:
    values = {
        "name": "tiny",
        "owner": "user:default/ann",
        "repoUrl": "github.com?owner=acme&repo=tiny",
        "remoteUrl": str(remote),
        "docker": False,
    }
    output, _, workspace = await run_example("python-service", values, tmp_path)
    assert isinstance(output, dict), output
    assert not (workspace / "Dockerfile").exists()
    assert "container" not in (workspace / "service.yaml").read_text()
    assert "docker" not in output["text"][0]["content"]


async def test_python_service_default_remote_twice(tmp_path: Path) -> None:
    """Without remoteUrl the service lands in the remotes folder as <name>.git; a
    second run with the same name fails with a message saying what to do."""
    values = {
        "name": "twice",
        "owner": "group:default/team",
        "repoUrl": "github.com?owner=acme&repo=twice",
    }
    remotes = tmp_path / "remotes"
    output, _, _ = await run_example("python-service", values, tmp_path / "a", remotes=remotes)
    assert isinstance(output, dict), output
    repo = remotes / "twice.git"
    assert 'name = "twice"' in show(repo, "pyproject.toml")
    assert f"git clone {repo} twice" in output["text"][0]["content"]

    again = {**values, "description": "Another one."}
    result, io, _ = await run_example("python-service", again, tmp_path / "b", remotes=remotes)
    assert isinstance(result, TaskFailedError)
    assert result.name == "ActionError"
    assert result.message.startswith(f"Branch 'main' of {repo} already has commits")
    assert statuses(io)["publish"] == "failed"
    assert "A Python service." in show(repo, "service.yaml")
