"""The GitHub actions against a loopback GitHub that validates every call against
GitHub's OpenAPI description (tests/support/forge): git transfer checked by cloning the
pushed repositories back, REST state read from the forge's model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from falsework.actions import ActionRegistry
from falsework.actions.integrations import GithubApp
from support.forge import ForgeServer, GitHub, seed
from support.forge.harness import ForgeRunner, clone, forge_runner, git, step

TOKEN = "ghs_integration_token_123"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[ForgeServer]:
    host = GitHub(
        tmp_path / "forge",
        tokens={TOKEN: "robot", "ghp_step_token": "alice"},
        owners={"acme": "Organization", "robot": "User", "alice": "User"},
        teams={"acme": ["platform", "readers"]},
        users=["bob", "carol"],
    )
    server = ForgeServer(host).start()
    yield server
    server.stop()
    assert server.take_violations() == []


@pytest.fixture
def gh(forge: ForgeServer, tmp_path: Path) -> ForgeRunner:
    return forge_runner(tmp_path / "run", forge, token=TOKEN)


def model(forge: ForgeServer) -> GitHub:
    assert isinstance(forge.host, GitHub)
    return forge.host


async def test_publish_github_creates_configures_pushes_and_protects(
    forge: ForgeServer, gh: ForgeRunner, tmp_path: Path
) -> None:
    gh.write({"README.md": "# svc\n", "src/app.py": "print('hi')\n"})
    repo_url = f"{forge.netloc}?owner=acme&repo=svc"
    run = await gh.run(
        [
            step(
                "publish:github",
                "publish",
                repoUrl=repo_url,
                description="A service",
                homepage="https://svc.example.com",
                repoVisibility="private",
                access="acme/platform",
                collaborators=[
                    {"user": "user:default/bob", "access": "push"},
                    {"team": "group:default/readers", "access": "pull"},
                    {"user": "nobody-here", "access": "pull"},
                ],
                topics=["Python", "service"],
                repoVariables={"REGION": "eu"},
                secrets={"DEPLOY_KEY": "s3cr3t"},
                requiredStatusCheckContexts=["ci/build"],
                requiredApprovingReviewCount=2,
                allowUpdateBranch=True,
                deleteBranchOnMerge=True,
                gitCommitMessage="Create svc from a template",
                gitAuthorName="Template Bot",
                gitAuthorEmail="bot@example.com",
            )
        ],
        output={"links": [{"url": "${{ steps.publish.output.remoteUrl }}"}]},
    )
    assert run.error is None, run.logs()
    out = run.step_output("publish")
    repo = model(forge).repo("acme", "svc")
    assert out["remoteUrl"] == f"{forge.url}/acme/svc.git"
    assert out["repoContentsUrl"] == f"{forge.url}/acme/svc/blob/main"
    assert out["commitHash"] == git(repo.path, "rev-parse", "refs/heads/main").strip()
    # the files, message, author and branch that landed
    checkout = clone(repo.path, tmp_path / "clone")
    assert (checkout / "src" / "app.py").read_text() == "print('hi')\n"
    assert git(repo.path, "log", "-1", "--format=%s|%an|%ae", "main").strip() == (
        "Create svc from a template|Template Bot|bot@example.com"
    )
    assert forge.pushes == [("acme/svc", "robot")]
    # the repository's settings, access and secrets
    assert repo.settings["visibility"] == "private" and repo.settings["private"] is True
    assert repo.settings["description"] == "A service"
    assert repo.settings["delete_branch_on_merge"] is True
    assert repo.settings["allow_update_branch"] is True
    assert repo.teams == {"platform": "admin", "readers": "pull"}
    assert repo.collaborators == {"bob": "push"}
    assert any("Skipping pull access for nobody-here" in line for line in run.logs())
    assert repo.topics == ["python", "service"]
    assert repo.variables == {"REGION": "eu"}
    assert repo.secrets == {"DEPLOY_KEY": "s3cr3t"}  # sealed for the repository's key
    protection = repo.protections["main"]
    assert protection["required_status_checks"] == {"strict": True, "contexts": ["ci/build"]}
    assert protection["enforce_admins"] is True
    assert protection["required_pull_request_reviews"]["required_approving_review_count"] == 2
    assert protection["restrictions"] is None


async def test_publish_github_for_a_user_from_a_sub_folder_unprotected(
    forge: ForgeServer, gh: ForgeRunner, tmp_path: Path
) -> None:
    gh.write({"service/a.txt": "a\n", "other/b.txt": "b\n"})
    run = await gh.run(
        [
            step(
                "publish:github",
                repoUrl=f"{forge.netloc}?owner=robot&repo=mine",
                repoVisibility="public",
                sourcePath="service",
                defaultBranch="trunk",
                protectDefaultBranch=False,
            )
        ]
    )
    assert run.error is None, run.logs()
    repo = model(forge).repo("robot", "mine")
    assert repo.settings["private"] is False
    assert repo.protections == {}
    assert forge.calls_to("repos/create-for-authenticated-user")
    checkout = clone(repo.path, tmp_path / "clone", "trunk")
    assert sorted(p.name for p in checkout.iterdir() if p.name != ".git") == ["a.txt"]
    assert git(repo.path, "log", "-1", "--format=%s|%an", "trunk").strip() == (
        "initial commit|Scaffolder"
    )


async def test_credentials_a_step_token_wins_and_none_is_a_clear_error(
    forge: ForgeServer, tmp_path: Path
) -> None:
    bare = forge_runner(tmp_path / "none", forge, token=None)
    bare.write({"a": "a"})
    run = await bare.run([step("publish:github", repoUrl=f"{forge.netloc}?owner=alice&repo=x")])
    assert run.error is not None
    assert f"no token available for host {forge.netloc}" in str(run.error)
    run = await bare.run(
        [
            step(
                "publish:github",
                repoUrl=f"{forge.netloc}?owner=alice&repo=x",
                token="ghp_step_token",
            )
        ]
    )
    assert run.error is None, run.logs()
    assert forge.pushes == [("alice/x", "alice")]
    unknown = await bare.run([step("publish:github", repoUrl="git.nowhere.test?owner=a&repo=b")])
    assert unknown.error is not None
    assert "no github integration is configured for host 'git.nowhere.test'" in str(unknown.error)
    no_owner = await bare.run([step("publish:github", repoUrl=f"{forge.netloc}?repo=b")])
    assert no_owner.error is not None and "owner" in str(no_owner.error)


async def test_an_existing_repository_fails_publish_with_the_hosts_reason(
    forge: ForgeServer, gh: ForgeRunner
) -> None:
    model(forge).add_repo("acme", "taken")
    gh.write({"a": "a"})
    run = await gh.run([step("publish:github", repoUrl=f"{forge.netloc}?owner=acme&repo=taken")])
    assert run.error is not None
    assert "Failed to create the Organization repository acme/taken" in str(run.error)
    assert "already exists" in str(run.error)


async def test_pull_request_created_then_updated(
    forge: ForgeServer, gh: ForgeRunner, tmp_path: Path
) -> None:
    repo = model(forge).add_repo("acme", "catalog")
    seed(repo, "main", {"README.md": "catalog\n", "services/old.txt": "old\n"})
    gh.write({"svc/catalog-info.yaml": "kind: Component\n"})
    pr_step = step(
        "publish:github:pull-request",
        "pr",
        repoUrl=f"{forge.netloc}?owner=acme&repo=catalog",
        branchName="add-svc",
        title="Add svc",
        description="Registers svc",
        draft=True,
        targetPath="services",
        filesToDelete=["old.txt"],
        reviewers=["bob"],
        teamReviewers=["platform"],
        assignees=["carol"],
        gitAuthorName="PR Bot",
        gitAuthorEmail="pr@example.com",
    )
    run = await gh.run([pr_step])
    assert run.error is None, run.logs()
    out = run.step_output("pr")
    assert out == {
        "targetBranchName": "main",
        "remoteUrl": f"{forge.url}/acme/catalog/pull/1",
        "pullRequestNumber": 1,
    }
    (pull,) = repo.pulls
    assert (pull.title, pull.body, pull.head, pull.base, pull.draft) == (
        "Add svc",
        "Registers svc",
        "add-svc",
        "main",
        True,
    )
    assert pull.reviewers == ["bob"] and pull.team_reviewers == ["platform"]
    assert pull.assignees == ["carol"]
    checkout = clone(repo.path, tmp_path / "pr", "add-svc")
    assert (checkout / "services" / "svc" / "catalog-info.yaml").read_text() == "kind: Component\n"
    assert (checkout / "README.md").read_text() == "catalog\n"  # the base is kept
    # filesToDelete is taken inside targetPath, as in Backstage
    assert not (checkout / "services" / "old.txt").exists()
    assert git(repo.path, "log", "-1", "--format=%s|%an|%ae", "add-svc").strip() == (
        "Add svc|PR Bot|pr@example.com"
    )
    # the same branch again without update: refused, nothing changed
    again = await gh.run([pr_step])
    assert again.error is not None and "already exists" in str(again.error)
    # with update: a new commit on the branch, the same pull request retitled
    gh.write({"svc/catalog-info.yaml": "kind: Component\nmetadata: {name: svc}\n"})
    updated = await gh.run(
        [{**pr_step, "input": {**pr_step["input"], "update": True, "title": "Add svc v2"}}]
    )
    assert updated.error is None, updated.logs()
    assert updated.step_output("pr")["pullRequestNumber"] == 1
    assert [p.title for p in repo.pulls] == ["Add svc v2"]
    assert git(repo.path, "rev-list", "--count", "add-svc").strip() == "3"


async def test_pull_request_with_nothing_to_change_is_not_created_when_asked(
    forge: ForgeServer, gh: ForgeRunner
) -> None:
    repo = model(forge).add_repo("acme", "same")
    seed(repo, "main", {"a.txt": "a\n"})
    gh.write({"a.txt": "a\n"})
    run = await gh.run(
        [
            step(
                "publish:github:pull-request",
                "pr",
                repoUrl=f"{forge.netloc}?owner=acme&repo=same",
                branchName="noop",
                title="Nothing",
                description="Nothing to change",
                createWhenEmpty=False,
            )
        ]
    )
    assert run.error is None, run.logs()
    assert repo.pulls == [] and run.step_output("pr") == {}
    assert any("No changes to commit, pull request was not created" in x for x in run.logs())


async def test_pull_request_paths_must_stay_in_the_repository(gh: ForgeRunner) -> None:
    run = await gh.run(
        [
            step(
                "publish:github:pull-request",
                repoUrl="github.com?owner=a&repo=b",
                branchName="x",
                title="t",
                description="d",
                targetPath="../escape",
            )
        ]
    )
    assert run.error is not None and "without '..' segments" in str(run.error)


async def test_repo_create_then_push(forge: ForgeServer, gh: ForgeRunner, tmp_path: Path) -> None:
    gh.write({"hello.txt": "hello\n"})
    url = f"{forge.netloc}?owner=acme&repo=two-step"
    run = await gh.run(
        [
            step("github:repo:create", "create", repoUrl=url, topics=["demo"], autoInit=False),
            step(
                "github:repo:push",
                "push",
                repoUrl=url,
                requiredLinearHistory=True,
                requiredCommitSigning=True,
            ),
        ]
    )
    assert run.error is None, run.logs()
    repo = model(forge).repo("acme", "two-step")
    assert run.step_output("create") == {"remoteUrl": f"{forge.url}/acme/two-step.git"}
    pushed = run.step_output("push")
    assert pushed["commitHash"] == git(repo.path, "rev-parse", "main").strip()
    assert repo.protections["main"]["required_linear_history"] is True
    assert repo.signed_branches == {"main"}
    assert (clone(repo.path, tmp_path / "c") / "hello.txt").read_text() == "hello\n"


async def test_dispatch_webhook_and_label(forge: ForgeServer, gh: ForgeRunner) -> None:
    repo = model(forge).add_repo("acme", "ops")
    seed(repo, "main", {"a": "a"})
    url = f"{forge.netloc}?owner=acme&repo=ops"
    run = await gh.run(
        [
            step(
                "github:actions:dispatch",
                "dispatch",
                repoUrl=url,
                workflowId="deploy.yaml",
                branchOrTagName="main",
                workflowInputs={"env": "prod"},
                returnWorkflowRunDetails=True,
            ),
            step(
                "github:webhook",
                "hook",
                repoUrl=url,
                webhookUrl="https://ci.example.com/hook",
                webhookSecret="hook-secret",
                events=["push", "pull_request"],
                contentType="json",
            ),
            step("github:issues:label", "label", repoUrl=url, number=7, labels=["a", "b"]),
        ]
    )
    assert run.error is None, run.logs()
    assert repo.dispatches == [
        {
            "workflow": "deploy.yaml",
            "ref": "main",
            "inputs": {"env": "prod"},
            "return_run_details": True,
        }
    ]
    assert run.step_output("dispatch") == {
        "workflowRunId": 9001,
        "workflowRunUrl": f"{forge.url}/api/v3/repos/acme/ops/actions/runs/9001",
        "workflowRunHtmlUrl": f"{forge.url}/acme/ops/actions/runs/9001",
    }
    (hook,) = repo.hooks
    assert hook["config"] == {
        "url": "https://ci.example.com/hook",
        "content_type": "json",
        "secret": "hook-secret",
        "insecure_ssl": "0",
    }
    assert hook["events"] == ["push", "pull_request"] and hook["active"] is True
    assert repo.labels == {7: ["a", "b"]}


async def test_a_dispatch_to_a_missing_ref_fails_with_githubs_message(
    forge: ForgeServer, gh: ForgeRunner
) -> None:
    model(forge).add_repo("acme", "ops")
    run = await gh.run(
        [
            step(
                "github:actions:dispatch",
                repoUrl=f"{forge.netloc}?owner=acme&repo=ops",
                workflowId="x.yaml",
                branchOrTagName="nope",
            )
        ]
    )
    assert run.error is not None
    assert "422" in str(run.error) and "No ref found for: nope" in str(run.error)


async def test_publish_github_in_a_dry_run_touches_nothing(
    forge: ForgeServer, gh: ForgeRunner
) -> None:
    gh.write({"a": "a"})
    run = await gh.run(
        [step("publish:github", "publish", repoUrl=f"{forge.netloc}?owner=acme&repo=dry")],
        dry_run=True,
    )
    assert run.error is None, run.logs()
    assert model(forge).repos == {} and forge.calls == []
    assert set(run.step_output("publish")) == {"remoteUrl", "repoContentsUrl", "commitHash"}


GITHUB_EXAMPLES = [
    pytest.param(item.id, index, id=f"{item.id}#{index}")
    for item in ActionRegistry.builtin().list()
    if item.id.startswith(("github:", "publish:github"))
    for index in range(len(item.examples))
]


@pytest.mark.parametrize(("action_id", "index"), GITHUB_EXAMPLES)
async def test_every_documented_example_runs_against_the_forge(
    forge: ForgeServer, tmp_path: Path, action_id: str, index: int
) -> None:
    """The docs' examples (github.com?owner=acme&…) with github.com served by the forge."""
    github = model(forge)
    seed(github.add_repo("acme", "catalog"), "main", {"README.md": "catalog\n"})
    if action_id == "github:repo:push":
        github.add_repo("acme", "my-service")  # made empty by github:repo:create
    elif action_id not in ("github:repo:create", "publish:github"):
        seed(github.add_repo("acme", "my-service"), "main", {"README.md": "svc\n"})
    runner = forge_runner(tmp_path / "ex", forge, token=TOKEN, host="github.com")
    runner.write({"services/x.txt": "x\n", "README.md": "hi\n"})
    example = ActionRegistry.builtin().get(action_id).examples[index]
    run = await runner.run(yaml.safe_load(example.example)["steps"])
    assert run.error is None, run.logs()


def _app_key() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


async def test_a_github_app_installation_token_is_used_for_allowed_owners(
    tmp_path: Path,
) -> None:
    private, public = _app_key()
    host = GitHub(
        tmp_path / "forge",
        tokens={},
        owners={"acme": "Organization", "other": "Organization"},
        apps={"4242": (public, ["acme", "other"])},
    )
    forge = ForgeServer(host).start()
    try:
        app = GithubApp("4242", private, allowed_installation_owners=("acme",))
        runner = forge_runner(tmp_path / "run", forge, apps=(app,))
        runner.write({"a.txt": "a\n"})
        run = await runner.run(
            [step("publish:github", repoUrl=f"{forge.netloc}?owner=acme&repo=by-app")]
        )
        assert run.error is None, run.logs()
        assert forge.pushes == [("acme/by-app", "app-4242[bot]")]
        assert forge.calls_to("apps/create-installation-access-token")[0].user == "app:4242"
        refused = await runner.run(
            [step("publish:github", repoUrl=f"{forge.netloc}?owner=other&repo=x")]
        )
        assert refused.error is not None
        assert "not in allowedInstallationOwners" in str(refused.error)
        assert "other/x" not in str(host.repos)
    finally:
        forge.stop()
    assert forge.take_violations() == []


async def test_the_egress_policy_holds_for_the_forge_actions(
    forge: ForgeServer, tmp_path: Path
) -> None:
    """A forge on a denied address (loopback, not allowed) is never contacted: not by
    the REST client, not by git; the message does not tell an open port from a closed
    one."""
    from falsework.actions.integrations import ForgeHost, Integrations
    from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError, WorkflowRunner
    from falsework.templating import Renderer

    host = ForgeHost("github", forge.netloc, f"{forge.url}/api/v3", TOKEN, owners=("*",))
    strict = Integrations(hosts=(host,))  # the default policies: loopback refused
    runner = WorkflowRunner(
        ActionRegistry.builtin(settings=[strict]), Renderer(), work_dir=tmp_path / "w"
    )
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "a.txt").write_text("a")
    for action_id, extra in [
        ("publish:github", {}),
        ("github:issues:label", {"number": 1, "labels": ["x"]}),
    ]:
        spec = {
            "steps": [step(action_id, repoUrl=f"{forge.netloc}?owner=acme&repo=x", **extra)],
            "parameters": {},
            "output": {},
        }
        with pytest.raises(TaskFailedError) as failed:
            await runner.run(LocalTask(spec=spec), MemoryTaskIO(), workspace=tmp_path / "ws")
        assert "could not reach" in str(failed.value).lower() or "reach" in str(failed.value)
    assert forge.calls == [] and forge.pushes == []
