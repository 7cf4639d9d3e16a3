"""publish:gitlab and publish:gitlab:merge-request against a loopback GitLab that checks
every call against its API description (tests/support/forge/specs/gitlab.yaml): git
transfer checked by cloning the pushed repositories back, REST state read from the
forge's model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from falsework.actions import ActionRegistry
from falsework.runner import TaskFailedError
from support.forge import ForgeServer
from support.forge.bare import seed_bare
from support.forge.gitlab import GitLab
from support.forge.harness import ForgeRunner, clone, forge_runner, git, step

TOKEN = "glpat-integration-token"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[ForgeServer]:
    host = GitLab(
        tmp_path / "forge",
        tokens={TOKEN: "robot", "glpat-alice": "alice"},
        users=["robot", "alice", "bob", "carol"],
        groups={"acme": ["robot"], "acme/platform": ["robot"], "other": ["robot"]},
    )
    server = ForgeServer(host).start()
    yield server
    server.stop()
    assert server.take_violations() == []


@pytest.fixture
def gl(forge: ForgeServer, tmp_path: Path) -> ForgeRunner:
    return forge_runner(
        tmp_path / "run", forge, kind="gitlab", token=TOKEN, owners=("acme", "robot")
    )


def model(forge: ForgeServer) -> GitLab:
    assert isinstance(forge.host, GitLab)
    return forge.host


async def test_publish_gitlab_creates_pushes_and_configures(
    forge: ForgeServer, gl: ForgeRunner, tmp_path: Path
) -> None:
    gl.write({"README.md": "# svc\n", "src/app.py": "print('hi')\n"})
    run = await gl.run(
        [
            step(
                "publish:gitlab",
                "publish",
                repoUrl=f"{forge.netloc}?owner=acme/platform&repo=svc",
                defaultBranch="main",
                repoVisibility="internal",
                topics=["python"],
                settings={"description": "A service", "merge_method": "ff", "topics": ["svc"]},
                branches=[
                    {"name": "main", "protect": True},
                    {"name": "develop", "create": True, "ref": "main", "protect": True},
                ],
                projectVariables=[
                    {"key": "REGION", "value": "eu"},
                    {"key": "KUBECONFIG", "value": "x", "variable_type": "file", "masked": True},
                ],
                gitCommitMessage="Create svc",
                gitAuthorName="Template Bot",
                gitAuthorEmail="bot@example.com",
            )
        ]
    )
    assert run.error is None, run.logs()
    project = model(forge).project("acme/platform/svc")
    out = run.step_output("publish")
    assert out["remoteUrl"] == f"{forge.url}/acme/platform/svc"
    assert out["repoContentsUrl"] == f"{forge.url}/acme/platform/svc/-/blob/main"
    assert out["projectId"] == project.id and out["created"] is True
    assert out["commitHash"] == git(project.path, "rev-parse", "refs/heads/main").strip()
    checkout = clone(project.path, tmp_path / "clone")
    assert (checkout / "src" / "app.py").read_text() == "print('hi')\n"
    assert git(project.path, "log", "-1", "--format=%s|%an|%ae", "main").strip() == (
        "Create svc|Template Bot|bot@example.com"
    )
    assert forge.pushes == [("acme/platform/svc", "robot")]
    # settings win over the deprecated top-level inputs, as in Backstage
    assert project.settings["visibility"] == "internal"
    assert project.settings["topics"] == ["svc"]
    assert project.settings["merge_method"] == "ff"
    assert project.settings["description"] == "A service"
    assert set(project.branches()) == {"main", "develop"}
    assert set(project.protected) == {"main", "develop"}
    assert project.variables["REGION"]["environment_scope"] == "*"
    assert project.variables["KUBECONFIG"]["variable_type"] == "file"
    assert project.variables["KUBECONFIG"]["masked"] is True
    # the integration's token went as PRIVATE-TOKEN, the calls as its user
    assert {c.user for c in forge.calls} == {"robot"}
    # the credential is in no event of the task
    assert TOKEN not in str(run.io.events)


async def test_publish_gitlab_for_a_user_a_sub_folder_and_defaults(
    forge: ForgeServer, gl: ForgeRunner, tmp_path: Path
) -> None:
    gl.write({"service/a.txt": "a\n", "other/b.txt": "b\n"})
    run = await gl.run(
        [
            step(
                "publish:gitlab",
                "publish",
                repoUrl=f"{forge.netloc}?owner=robot&repo=mine",
                sourcePath="service",
            )
        ]
    )
    assert run.error is None, run.logs()
    project = model(forge).project("robot/mine")
    assert project.settings["visibility"] == "private"
    checkout = clone(project.path, tmp_path / "clone", "master")
    assert sorted(p.name for p in checkout.iterdir() if p.name != ".git") == ["a.txt"]
    assert git(project.path, "log", "-1", "--format=%s|%an", "master").strip() == (
        "initial commit|Scaffolder"
    )
    assert run.step_output("publish")["repoContentsUrl"].endswith("/robot/mine/-/blob/master")


async def test_publish_gitlab_skip_existing_and_an_empty_repository(
    forge: ForgeServer, gl: ForgeRunner
) -> None:
    existing = model(forge).add_project("acme", "old")
    seed_bare(existing.path, "main", {"README.md": "old\n"}, "seed")
    gl.write({"a.txt": "a\n"})
    run = await gl.run(
        [
            step(
                "publish:gitlab",
                "old",
                repoUrl=f"{forge.netloc}?owner=acme&repo=old",
                skipExisting=True,
            ),
            step(
                "publish:gitlab",
                "empty",
                repoUrl=f"{forge.netloc}?owner=acme&repo=empty",
                sourcePath=False,
            ),
        ]
    )
    assert run.error is None, run.logs()
    assert run.step_output("old") == {
        "remoteUrl": f"{forge.url}/acme/old",
        "repoContentsUrl": f"{forge.url}/acme/old/-/blob/main",
        "projectId": existing.id,
        "created": False,
    }
    assert "commitHash" not in run.step_output("empty")
    assert model(forge).project("acme/empty").branches() == {}
    assert forge.pushes == []
    # without skipExisting, an existing project is GitLab's refusal, named
    again = await gl.run([step("publish:gitlab", repoUrl=f"{forge.netloc}?owner=acme&repo=old")])
    assert again.error is not None
    assert "400 to POST /api/v4/projects: name has already been taken; path has already" in str(
        again.error
    )


async def test_publish_gitlab_credentials_are_scoped_and_errors_are_clear(
    forge: ForgeServer, gl: ForgeRunner, tmp_path: Path
) -> None:
    gl.write({"a.txt": "a\n"})
    # the configured token is for acme and robot only
    run = await gl.run([step("publish:gitlab", repoUrl=f"{forge.netloc}?owner=other&repo=x")])
    assert run.error is not None
    assert f"no token available for host {forge.netloc} (owner other" in str(run.error)
    assert forge.calls == []
    # a step's own token wins (sent as an OAuth bearer token)
    run = await gl.run(
        [
            step(
                "publish:gitlab",
                repoUrl=f"{forge.netloc}?owner=alice&repo=own",
                token="glpat-alice",
            )
        ]
    )
    assert run.error is None, run.logs()
    assert forge.pushes == [("alice/own", "alice")]
    missing = await gl.run(
        [step("publish:gitlab", repoUrl=f"{forge.netloc}?owner=acme/nope&repo=x")]
    )
    assert missing.error is not None
    assert "The namespace acme/nope is not found" in str(missing.error)
    no_owner = await gl.run([step("publish:gitlab", repoUrl=f"{forge.netloc}?repo=x")])
    assert no_owner.error is not None
    assert f"No owner provided for host: {forge.netloc}, and repo x" in str(no_owner.error)
    unknown = forge_runner(tmp_path / "none", forge, kind="github", token=TOKEN)
    unknown.write({"a": "a"})
    nohost = await unknown.run(
        [step("publish:gitlab", repoUrl=f"{forge.netloc}?owner=acme&repo=x")]
    )
    assert nohost.error is not None
    assert f"no gitlab integration is configured for host {forge.netloc!r}" in str(nohost.error)


async def test_a_bad_variable_key_is_refused_before_any_call(
    forge: ForgeServer, gl: ForgeRunner
) -> None:
    gl.write({"a": "a"})
    run = await gl.run(
        [
            step(
                "publish:gitlab",
                repoUrl=f"{forge.netloc}?owner=acme&repo=x",
                projectVariables=[{"key": "MY-VAR", "value": "v"}],
            )
        ]
    )
    assert run.error is not None
    assert "projectVariables.0.key" in str(run.error) and "pattern" in str(run.error)
    assert forge.calls == []


async def test_set_user_as_owner_uses_the_configured_token(
    forge: ForgeServer, gl: ForgeRunner
) -> None:
    model(forge).groups["acme"][1].append("alice")
    gl.write({"a.txt": "a\n"})
    run = await gl.run(
        [
            step(
                "publish:gitlab",
                repoUrl=f"{forge.netloc}?owner=acme&repo=hers",
                token="glpat-alice",
                setUserAsOwner=True,
            )
        ]
    )
    assert run.error is None, run.logs()
    project = model(forge).project("acme/hers")
    assert project.members == {model(forge).users["alice"]: 50}
    assert forge.calls_to("projects/members/add")[0].user == "robot"


def _catalog(forge: ForgeServer) -> None:
    project = model(forge).add_project("acme", "catalog")
    seed_bare(project.path, "main", {"README.md": "catalog\n", "services/old.txt": "old\n"}, "seed")


async def test_merge_request_commits_to_a_new_branch_and_opens_the_request(
    forge: ForgeServer, gl: ForgeRunner, tmp_path: Path
) -> None:
    _catalog(forge)
    gl.write({"svc/catalog-info.yaml": "kind: Component\n"})
    run = await gl.run(
        [
            step(
                "publish:gitlab:merge-request",
                "mr",
                repoUrl=f"{forge.netloc}?owner=acme&repo=catalog",
                branchName="add-svc",
                title="Add svc",
                description="Registers svc",
                sourcePath="svc",
                targetPath="services/svc",
                assignee="bob",
                reviewers=["carol", "nobody"],
                labels=["scaffolder", "new"],
                removeSourceBranch=True,
            )
        ]
    )
    assert run.error is None, run.logs()
    project = model(forge).project("acme/catalog")
    assert run.step_output("mr") == {
        "projectid": "acme/catalog",
        "projectPath": "acme/catalog",
        "targetBranchName": "main",
        "mergeRequestUrl": f"{forge.url}/acme/catalog/-/merge_requests/1",
    }
    checkout = clone(project.path, tmp_path / "clone", "add-svc")
    assert (checkout / "services" / "svc" / "catalog-info.yaml").read_text() == "kind: Component\n"
    assert (checkout / "services" / "old.txt").read_text() == "old\n"
    # Backstage commits through the API, as the token's user, with the title as message
    assert git(project.path, "log", "-1", "--format=%s|%an|%ae", "add-svc").strip() == (
        "Add svc|Robot|robot@forge.test"
    )
    [mr] = project.merge_requests
    users = model(forge).users
    assert (mr["source_branch"], mr["target_branch"], mr["state"]) == ("add-svc", "main", "opened")
    assert mr["assignee_id"] == users["bob"] and mr["reviewer_ids"] == [users["carol"]]
    assert mr["labels"] == "scaffolder,new" and mr["remove_source_branch"] is True
    assert any("Failed to find gitlab user id for nobody" in line for line in run.logs())


async def test_merge_request_on_an_existing_branch_is_refused_or_reused(
    forge: ForgeServer, gl: ForgeRunner
) -> None:
    _catalog(forge)
    gl.write({"x.txt": "x\n"})
    first = await gl.run(
        [
            step(
                "publish:gitlab:merge-request",
                repoUrl=f"{forge.netloc}?owner=acme&repo=catalog",
                branchName="feature",
                title="One",
            )
        ]
    )
    assert first.error is None, first.logs()
    again = await gl.run(
        [
            step(
                "publish:gitlab:merge-request",
                repoUrl=f"{forge.netloc}?owner=acme&repo=catalog",
                branchName="feature",
                title="Two",
            )
        ]
    )
    assert again.error is not None
    assert "the branch already exists at:" in str(again.error)
    assert "there is a Merge Request for this branch" in str(again.error)
    assert f"{forge.url}/acme/catalog/-/merge_requests/1" in str(again.error)
    # commitAction skip with no branch: the branch is made from the target, unchanged
    skip = await gl.run(
        [
            step(
                "publish:gitlab:merge-request",
                repoUrl=f"{forge.netloc}?owner=acme&repo=catalog",
                branchName="empty",
                title="Nothing",
                commitAction="skip",
            )
        ]
    )
    assert skip.error is None, skip.logs()
    branches = model(forge).project("acme/catalog").branches()
    assert branches["empty"] == branches["main"]


async def test_merge_request_delete_action_and_reviewers_from_approval_rules(
    forge: ForgeServer, gl: ForgeRunner, tmp_path: Path
) -> None:
    _catalog(forge)
    project = model(forge).project("acme/catalog")
    project.approvers = ["carol"]
    gl.write({"old.txt": "whatever\n"})
    run = await gl.run(
        [
            step(
                "publish:gitlab:merge-request",
                repoUrl=f"{forge.netloc}?owner=acme&repo=catalog",
                branchName="cleanup",
                title="Remove old",
                targetPath="services",
                sourcePath=".",
                commitAction="delete",
                reviewers=["bob"],
                assignReviewersFromApprovalRules=True,
            )
        ]
    )
    assert run.error is None, run.logs()
    checkout = clone(project.path, tmp_path / "clone", "cleanup")
    assert not (checkout / "services" / "old.txt").exists()
    assert (checkout / "README.md").exists()
    users = model(forge).users
    assert project.merge_requests[0]["reviewer_ids"] == [users["carol"], users["bob"]]


async def test_publish_gitlab_in_a_rehearsal_records_and_touches_nothing(
    forge: ForgeServer, gl: ForgeRunner
) -> None:
    gl.write({"a": "a"})
    run = await gl.run(
        [step("publish:gitlab", "publish", repoUrl=f"{forge.netloc}?owner=acme&repo=dry")],
        dry_run=True,
    )
    assert run.error is None, run.logs()
    assert model(forge).projects == {} and forge.calls == []
    assert set(run.step_output("publish")) >= {"remoteUrl", "repoContentsUrl"}


GITLAB_EXAMPLES = [
    pytest.param(item.id, index, id=f"{item.id}#{index}")
    for item in ActionRegistry.builtin().list()
    if item.id.startswith("publish:gitlab")
    for index in range(len(item.examples))
]


@pytest.mark.parametrize(("action_id", "index"), GITLAB_EXAMPLES)
async def test_every_documented_example_runs_against_the_forge(
    forge: ForgeServer, tmp_path: Path, action_id: str, index: int
) -> None:
    """The docs' examples (gitlab.com?owner=acme&…) with gitlab.com served by the forge."""
    _catalog(forge)
    runner = forge_runner(
        tmp_path / "ex", forge, kind="gitlab", token=TOKEN, host="gitlab.com", owners=("acme",)
    )
    runner.write({"services/x.txt": "x\n", "README.md": "hi\n"})
    example = ActionRegistry.builtin().get(action_id).examples[index]
    run = await runner.run(yaml.safe_load(example.example)["steps"])
    assert run.error is None, run.logs()


async def test_merge_request_commit_actions_refuse_what_gitlab_would(
    forge: ForgeServer, gl: ForgeRunner, tmp_path: Path
) -> None:
    """create of an existing file, update or delete of a missing one: refused before
    anything is pushed, as GitLab's Commits API refuses them for Backstage."""
    _catalog(forge)
    project = model(forge).project("acme/catalog")
    gl.write({"old.txt": "new content\n", "fresh.txt": "fresh\n"})
    base = {"repoUrl": f"{forge.netloc}?owner=acme&repo=catalog", "title": "T"}
    base |= {"targetPath": "services", "sourcePath": "."}
    for action, branch, message in [
        (
            "create",
            "c",
            "none of the files created by the template already exists: services/old.txt",
        ),
        ("update", "u", "commitAction update of services/fresh.txt"),
        ("delete", "d", "commitAction delete of services/fresh.txt"),
    ]:
        run = await gl.run(
            [step("publish:gitlab:merge-request", branchName=branch, commitAction=action, **base)]
        )
        assert run.error is not None and message in str(run.error), action
    assert set(project.branches()) == {"main"} and project.merge_requests == []
    # update of files that all exist is a commit changing them
    (gl.workspace / "fresh.txt").unlink()
    run = await gl.run(
        [step("publish:gitlab:merge-request", branchName="u2", commitAction="update", **base)]
    )
    assert run.error is None, run.logs()
    checkout = clone(project.path, tmp_path / "clone", "u2")
    assert (checkout / "services" / "old.txt").read_text() == "new content\n"


async def test_a_retried_publish_does_not_repeat_what_it_did(
    forge: ForgeServer, gl: ForgeRunner, tmp_path: Path
) -> None:
    """The push fails after the project was made; the engine's next attempt (the same
    task, its checkpoints) pushes without creating the project again."""
    from falsework.runner import LocalTask, MemoryTaskIO

    gl.write({"a.txt": "a\n"})
    given = {"repoUrl": f"{forge.netloc}?owner=acme&repo=again", "defaultBranch": "main"}
    spec = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "steps": [step("publish:gitlab", "publish", **given)],
        "parameters": {},
        "output": {},
    }
    task, io = LocalTask(spec=spec), MemoryTaskIO()
    forge.refuse_pushes = 1
    with pytest.raises(TaskFailedError, match="503"):
        await gl.runner.run(task, io, workspace=gl.workspace)
    assert model(forge).project("acme/again").branches() == {}
    await gl.runner.run(io.resumed(task), io, workspace=gl.workspace)
    assert len(forge.calls_to("projects/create")) == 1
    assert set(model(forge).project("acme/again").branches()) == {"main"}
    assert forge.pushes == [("acme/again", "robot")]
