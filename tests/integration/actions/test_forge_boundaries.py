"""The trust boundary holds for the GitLab, Gitea and Bitbucket actions: a forge on a
denied address (loopback, not allowed by the egress policy) is never contacted, neither
by the REST client nor by git."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from falsework.actions import ActionRegistry
from falsework.actions.integrations import ForgeHost, Integrations
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
from falsework.templating import Renderer
from support.forge import ForgeServer
from support.forge.gitlab import GitLab
from support.forge.harness import step

CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("azure", "", "publish:azure", {"repoUrl": "?organization=acme&project=p&repo=x"}),
    (
        "azure",
        "",
        "publish:azure:pull-request",
        {
            "repoUrl": "?organization=acme&project=p&repo=x",
            "sourceBranchName": "b",
            "title": "t",
            "description": "d",
        },
    ),
    ("gitlab", "/api/v4", "publish:gitlab", {"repoUrl": "?owner=acme&repo=x"}),
    (
        "gitlab",
        "/api/v4",
        "publish:gitlab:merge-request",
        {"repoUrl": "?owner=acme&repo=x", "branchName": "b", "title": "t"},
    ),
    ("gitea", "/api/v1", "publish:gitea", {"repoUrl": "?owner=acme&repo=x"}),
    (
        "bitbucketCloud",
        "/2.0",
        "publish:bitbucketCloud",
        {"repoUrl": "?workspace=acme&project=P&repo=x"},
    ),
    (
        "bitbucketCloud",
        "/2.0",
        "publish:bitbucketCloud:pull-request",
        {"repoUrl": "?workspace=acme&repo=x", "title": "t", "sourceBranch": "b"},
    ),
    (
        "bitbucketServer",
        "/rest/api/1.0",
        "publish:bitbucketServer",
        {"repoUrl": "?project=acme&repo=x"},
    ),
    (
        "bitbucketServer",
        "/rest/api/1.0",
        "publish:bitbucketServer:pull-request",
        {"repoUrl": "?project=acme&repo=x", "title": "t", "sourceBranch": "b"},
    ),
]


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgeServer]:
    """Something listening on loopback that records whatever reaches it."""
    server = ForgeServer(GitLab(tmp_path_factory.mktemp("forge"), tokens={}, users=[])).start()
    yield server
    server.stop()


@pytest.mark.parametrize(("kind", "prefix", "action_id", "given"), CASES)
async def test_a_denied_forge_is_never_contacted(
    listener: ForgeServer,
    tmp_path: Path,
    kind: str,
    prefix: str,
    action_id: str,
    given: dict[str, Any],
) -> None:
    host = ForgeHost(
        kind,  # type: ignore[arg-type]
        listener.netloc,
        listener.url + prefix,
        "a-token",
        "robot",
        owners=("*",),
    )
    strict = Integrations(hosts=(host,))  # the default policies: loopback refused
    runner = WorkflowRunner(
        ActionRegistry.builtin(settings=[strict]), Renderer(), work_dir=tmp_path / "w"
    )
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "a.txt").write_text("a")
    given = {**given, "repoUrl": listener.netloc + given["repoUrl"]}
    spec = {"steps": [step(action_id, **given)], "parameters": {}, "output": {}}
    io = MemoryTaskIO()
    with pytest.raises(TaskFailedError) as failed:
        await runner.run(LocalTask(spec=spec), io, workspace=tmp_path / "ws")
    assert f"Could not reach {listener.netloc}" in str(failed.value)
    assert "a-token" not in str(failed.value) and "a-token" not in str(io.events)
    assert listener.calls == [] and listener.pushes == [] and listener.take_violations() == []
