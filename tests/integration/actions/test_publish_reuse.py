"""publish:* run twice: a run interrupted right after its push (the push landed, the
step's record of it did not) is followed by a run that finds what it made by the
step's idempotency key and reuses it: the same outputs, nothing made twice. The
controls run the same step as a new task (another key): refused as before."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from falsework.actions import ActionRegistry
from falsework.actions.git import KEY_TRAILER
from falsework.actions.policies import GitPolicy, PublishPolicy
from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
from falsework.runner.idempotency import derive
from falsework.templating import Renderer
from support.forge import ForgeServer, GitHub, seed
from support.forge.harness import ForgeRunner, Run, forge_runner, git, serving, step

TOKEN = "ghs_integration_token_123"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[ForgeServer]:
    owners = {"acme": "Organization", "robot": "User"}
    with serving(GitHub(tmp_path / "forge", tokens={TOKEN: "robot"}, owners=owners)) as server:
        yield server


@pytest.fixture
def gh(forge: ForgeServer, tmp_path: Path) -> ForgeRunner:
    runner = forge_runner(tmp_path / "run", forge, token=TOKEN)
    runner.write({"README.md": "# svc\n"})
    return runner


def model(forge: ForgeServer) -> GitHub:
    assert isinstance(forge.host, GitHub)
    return forge.host


def ok(run: Run) -> Run:
    assert run.error is None, "\n".join(run.logs())
    return run


# -- publish:git ------------------------------------------------------------------
async def run_task(runner: WorkflowRunner, task: LocalTask, workspace: Path) -> Run:
    io = MemoryTaskIO(checkpoints=dict(task.checkpoints))
    run = Run(io, task=task)
    try:
        run.output = await runner.run(task, io, workspace=workspace)
    except TaskFailedError as exc:
        run.error = exc
    return run


@pytest.mark.parametrize("force", [False, True])
async def test_publish_git_reuses_the_commit_an_interrupted_run_pushed(
    tmp_path: Path, force: bool
) -> None:
    remotes = tmp_path / "remotes"
    policy = PublishPolicy(remotes_dir=remotes, git=GitPolicy(timeout=30))
    runner = WorkflowRunner(ActionRegistry.builtin((policy,)), Renderer(), work_dir=tmp_path / "w")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "README.md").write_text("# svc\n")
    publish = step("publish:git", "publish", remoteUrl="svc.git", force=force)
    task = LocalTask(spec={"steps": [publish]})
    first = ok(await run_task(runner, task, workspace))
    bare = remotes / "svc.git"
    commit = git(bare, "rev-parse", "main").strip()
    assert first.step_output("publish")["commitHash"] == commit
    trailer = f"%(trailers:key={KEY_TRAILER},valueonly)"
    assert git(bare, "log", "-1", f"--format={trailer}", "main").strip() == derive(
        task.id, "publish", 1
    )
    (workspace / "README.md").write_text("# svc, rendered again\n")  # not the same tree
    again = ok(await run_task(runner, first.interrupted("publish"), workspace))
    assert again.step_output("publish") == first.step_output("publish")
    assert git(bare, "rev-list", "--count", "main").strip() == "1"
    assert git(bare, "rev-parse", "main").strip() == commit
    assert any("pushed by an earlier run of this step" in line for line in again.logs())
    other = await run_task(runner, LocalTask(spec=task.spec), workspace)  # another task
    if force:  # replaces the branch, as asked
        assert other.error is None and git(bare, "rev-parse", "main").strip() != commit
    else:
        assert other.error is not None and "already has commits" in other.error.message


# -- publish:github ------------------------------------------------------------------
async def test_publish_github_reuses_the_repository_and_commit(
    forge: ForgeServer, gh: ForgeRunner
) -> None:
    publish = step(
        "publish:github",
        "publish",
        repoUrl=f"{forge.netloc}?owner=acme&repo=svc",
        repoVariables={"REGION": "eu"},
        topics=["service"],
    )
    first = ok(await gh.run([publish]))
    repo = model(forge).repo("acme", "svc")
    commit = git(repo.path, "rev-parse", "main").strip()
    again = ok(await gh.run([], task=first.interrupted("publish")))
    assert again.step_output("publish") == first.step_output("publish")
    assert again.step_output("publish")["commitHash"] == commit
    assert git(repo.path, "rev-list", "--count", "main").strip() == "1"
    assert len(forge.calls_to("repos/create-in-org")) == 2  # the second one refused
    assert forge.pushes == [("acme/svc", "robot")]
    assert repo.variables == {"REGION": "eu"} and repo.topics == ["service"]
    assert any("created by an earlier run of this step" in line for line in again.logs())
    other = await gh.run([publish])
    assert other.error is not None and "already exists" in other.error.message


async def test_github_repo_create_adopts_the_empty_repository_it_made(
    forge: ForgeServer, gh: ForgeRunner
) -> None:
    create = step("github:repo:create", "create", repoUrl=f"{forge.netloc}?owner=acme&repo=new")
    first = ok(await gh.run([create]))
    again = ok(await gh.run([], task=first.interrupted("create")))
    assert again.step_output("create") == first.step_output("create")
    assert len(model(forge).repos) == 1
    # someone else's repository of that name is never taken: not empty, not ours
    seed(model(forge).repo("acme", "new"), "main", {"x": "y"})
    taken = await gh.run([], task=first.interrupted("create"))
    assert taken.error is not None and "already exists" in taken.error.message


async def test_github_repo_push_reuses_the_commit(forge: ForgeServer, gh: ForgeRunner) -> None:
    model(forge).add_repo("acme", "empty")
    push = step("github:repo:push", "push", repoUrl=f"{forge.netloc}?owner=acme&repo=empty")
    first = ok(await gh.run([push]))
    again = ok(await gh.run([], task=first.interrupted("push")))
    assert again.step_output("push") == first.step_output("push")
    assert forge.pushes == [("acme/empty", "robot")]
    other = await gh.run([push])
    assert other.error is not None and "already has commits" in other.error.message


# -- publish:github:pull-request -----------------------------------------------------
async def test_pull_request_reuses_the_branch_and_the_pull_request(
    forge: ForgeServer, gh: ForgeRunner
) -> None:
    repo = model(forge).add_repo("acme", "catalog")
    seed(repo, "main", {"README.md": "catalog\n"})
    pr: dict[str, Any] = step(
        "publish:github:pull-request",
        "pr",
        repoUrl=f"{forge.netloc}?owner=acme&repo=catalog",
        branchName="add-svc",
        title="Add svc",
        description="Registers svc",
    )
    first = ok(await gh.run([pr]))
    head = git(repo.path, "rev-parse", "add-svc").strip()
    again = ok(await gh.run([], task=first.interrupted("pr")))
    assert again.step_output("pr") == first.step_output("pr")
    assert [p.number for p in repo.pulls] == [1]
    assert git(repo.path, "rev-parse", "add-svc").strip() == head
    assert any("opened by an earlier run of this step" in line for line in again.logs())
    other = await gh.run([pr])
    assert other.error is not None and "already exists" in other.error.message


def test_trailer_is_what_git_reads_as_one() -> None:
    done = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=f"Subject\n\nBody text.\n\n{KEY_TRAILER}: abc\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == f"{KEY_TRAILER}: abc"


async def test_webhook_made_by_an_interrupted_run_is_not_a_failure(
    forge: ForgeServer, gh: ForgeRunner
) -> None:
    repo = model(forge).add_repo("acme", "ops")
    url = f"{forge.netloc}?owner=acme&repo=ops"
    hook = step("github:webhook", "hook", repoUrl=url, webhookUrl="https://ci.example.com/h")
    first = ok(await gh.run([hook]))
    again = ok(await gh.run([], task=first.interrupted("hook")))
    assert len(repo.hooks) == 1
    assert any("created by an earlier run of this step" in line for line in again.logs())
    other = ok(await gh.run([hook]))  # another task: GitHub's refusal, as a warning
    assert any("Hook already exists" in line for line in other.logs())
