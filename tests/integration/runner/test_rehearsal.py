"""Rehearsals: dry runs where side-effecting actions become recorders
(falsework.actions.rehearsal), through the real runner and built-in actions."""

from __future__ import annotations

import base64
from typing import Any

from falsework.actions.rehearsal import DEFAULT_USER, HttpAnswer, Rehearsal


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def decoded(files: list[dict[str, Any]]) -> dict[str, str]:
    return {f["path"]: base64.b64decode(f["base64Content"]).decode() for f in files}


FILES = [
    {"path": "template.yaml", "base64Content": b64("kind: Template\n")},
    {"path": "skeleton/README.md", "base64Content": b64("# ${{ values.name }}\n")},
    {
        "path": "skeleton/catalog-info.yaml",
        "base64Content": b64(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
            "metadata:\n  name: ${{ values.name }}\n"
        ),
    },
    {"path": "skeleton/run.sh", "base64Content": b64("echo hi\n"), "executable": True},
]


def template(steps: list[dict[str, Any]], output: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "svc"},
        "spec": {"steps": steps, "output": output or {}},
    }


FETCH = {
    "id": "fetch",
    "action": "fetch:template",
    "input": {"url": "./skeleton", "values": {"name": "${{ parameters.name }}"}},
}


async def test_a_push_is_recorded_with_the_tree_it_would_push(harness: Any) -> None:
    steps = [
        FETCH,
        {
            "id": "publish",
            "action": "publish:git",
            "input": {
                "remoteUrl": "https://git.example.com/team/${{ parameters.name }}.git",
                "token": "${{ secrets.TOKEN }}",
            },
        },
        # after the push: not part of what was pushed
        {"id": "tidy", "action": "fs:delete", "input": {"files": ["README.md"]}},
        {
            "id": "register",
            "action": "catalog:register",
            "input": {"repoContentsUrl": "${{ steps.publish.output.repoContentsUrl }}"},
        },
    ]
    output = {
        "links": [
            {"title": "Repo", "url": "${{ steps.publish.output.remoteUrl }}"},
            {"title": "Entity", "entityRef": "${{ steps.register.output.entityRef }}"},
        ]
    }
    rehearsal = Rehearsal(seed="case-1")
    result = await harness.runner.dry_run(
        template(steps, output), {"name": "svc"}, {"TOKEN": "s3cret-token"}, FILES,
        rehearsal=rehearsal,
    )  # fmt: skip
    assert "error" not in result
    publish, register = result["recorded"]
    assert publish["step"] == "publish" and publish["action"] == "publish:git"
    assert publish["input"] == {
        "remoteUrl": "https://git.example.com/team/svc.git",
        "token": "***",
    }
    assert decoded(publish["files"]) == {
        "README.md": "# svc\n",
        "catalog-info.yaml": "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        "metadata:\n  name: svc\n",
        "run.sh": "echo hi\n",
    }
    assert [f["executable"] for f in publish["files"]] == [False, False, True]
    # the workspace at the end lost README.md; the recorded push did not
    assert [f["path"] for f in result["directoryContents"]] == ["catalog-info.yaml", "run.sh"]
    assert (
        register["catalogInfoUrl"] == "https://git.example.com/team/svc/tree/main/catalog-info.yaml"
    )
    assert result["output"]["links"] == [
        {"title": "Repo", "url": "https://git.example.com/team/svc.git"},
        {"title": "Entity", "entityRef": "component:default/svc"},
    ]
    assert [s["status"] for s in result["steps"]] == ["completed"] * 4
    assert "s3cret-token" not in str(result)


async def test_a_plain_dry_run_still_skips_and_records_nothing(harness: Any) -> None:
    steps = [FETCH, {"id": "publish", "action": "publish:git", "input": {"remoteUrl": "x.git"}}]
    result = await harness.runner.dry_run(template(steps), {"name": "svc"}, {}, FILES)
    assert "recorded" not in result
    messages = [e["body"]["message"] for e in result["log"]]
    assert any("Skipping because publish:git does not support dry-run" in m for m in messages)


async def test_an_action_without_a_recorder_is_recorded_and_skipped(harness: Any) -> None:
    steps = [{"id": "once", "action": "test:once", "input": {"key": "${{ parameters.k }}"}}]
    rehearsal = Rehearsal()
    result = await harness.runner.dry_run(template(steps), {"k": "a"}, {}, [], rehearsal=rehearsal)
    assert result["recorded"] == [{"step": "once", "action": "test:once", "input": {"key": "a"}}]
    assert result["steps"][0]["status"] == "skipped"


async def test_http_is_answered_from_canned_answers_and_polls_without_waiting(
    harness: Any,
) -> None:
    steps = [
        {
            "id": "submit",
            "action": "http:request",
            "input": {
                "method": "POST",
                "url": "https://argo.example.com/api/workflows",
                "body": {"name": "${{ parameters.name }}"},
            },
        },
        {
            "id": "wait",
            "action": "http:request",
            "input": {
                "url": "https://argo.example.com/api/workflows/${{ steps.submit.output.body.id }}",
                "until": "${{ response.body.phase == 'Succeeded' }}",
                "interval": 3600,
                "maxWait": 86400,
            },
        },
    ]
    answers = [
        HttpAnswer.from_json(
            {
                "request": {
                    "method": "POST",
                    "url": "https://argo.example.com/api/workflows",
                    "body": {"name": "svc"},
                },
                "response": {"status": 201, "body": {"id": "w-1"}},
            }
        ),
        HttpAnswer.from_json(
            {
                "request": {"url": "https://argo.example.com/api/workflows/w-1"},
                "responses": [{"body": {"phase": "Running"}}, {"body": {"phase": "Succeeded"}}],
            }
        ),
    ]
    result = await harness.runner.dry_run(
        template(steps, {"phase": "${{ steps.wait.output.body.phase }}"}),
        {"name": "svc"},
        {},
        [],
        rehearsal=Rehearsal(http=answers),
    )
    assert "error" not in result, result.get("error")
    assert result["output"] == {"phase": "Succeeded"}
    assert result["steps"][0]["status"] == "completed"
    assert [c.get("polls") for c in result["recorded"]] == [1, 2]


async def test_http_fails_closed_without_an_answer(harness: Any) -> None:
    steps = [{"id": "call", "action": "http:request", "input": {"url": "http://127.0.0.1:9/x"}}]
    result = await harness.runner.dry_run(template(steps), {}, {}, [], rehearsal=Rehearsal())
    assert result["steps"][0]["status"] == "failed"
    assert result["steps"][0]["error"]["name"] == "ActionError"
    assert "no canned answer matches" in result["error"]["message"]
    assert "GET http://127.0.0.1:9/x" in result["error"]["message"]


async def test_the_same_seed_gives_the_same_task_id_and_user(harness: Any) -> None:
    steps = [
        {"id": "log", "action": "debug:log", "input": {"message": "${{ context.task.id }}"}},
        {"id": "wait", "action": "debug:wait", "input": {"seconds": 600}},
    ]
    output = {"id": "${{ context.task.id }}", "user": "${{ user.ref }}"}
    first = await harness.runner.dry_run(
        template(steps, output), {}, {}, [], rehearsal=Rehearsal(seed="s")
    )
    again = await harness.runner.dry_run(
        template(steps, output), {}, {}, [], rehearsal=Rehearsal(seed="s")
    )
    other = await harness.runner.dry_run(
        template(steps, output), {}, {}, [], rehearsal=Rehearsal(seed="t")
    )
    assert first["output"] == again["output"]
    assert first["output"]["user"] == DEFAULT_USER["ref"]
    assert first["output"]["id"] != other["output"]["id"]
    # the clock is frozen: the wait is said, not waited
    assert any("Would wait 600 seconds" in e["body"]["message"] for e in first["log"])


# (action, input, its remoteUrl output, the remote it records it would push to)
FORGE_PUBLISHES = [
    (
        "publish:azure",
        {"repoUrl": "dev.azure.com?organization=acme&project=platform&repo=svc"},
        "https://dev.azure.com/acme/platform/_git/svc",
        "https://dev.azure.com/acme/platform/_git/svc",
    ),
    (
        "publish:gitlab",
        {"repoUrl": "gitlab.example.com?owner=acme/platform&repo=svc", "defaultBranch": "main"},
        "https://gitlab.example.com/acme/platform/svc",
        "https://gitlab.example.com/acme/platform/svc.git",
    ),
    (
        "publish:gitea",
        {"repoUrl": "gitea.example.com?owner=acme&repo=svc"},
        "https://gitea.example.com/acme/svc.git",
        "https://gitea.example.com/acme/svc.git",
    ),
    (
        "publish:bitbucketCloud",
        {"repoUrl": "bitbucket.org?workspace=acme&project=PLAT&repo=svc"},
        "https://bitbucket.org/acme/svc.git",
        "https://bitbucket.org/acme/svc.git",
    ),
    (
        "publish:bitbucketServer",
        {"repoUrl": "bitbucket.example.com?project=PLAT&repo=svc"},
        "https://bitbucket.example.com/scm/PLAT/svc.git",
        "https://bitbucket.example.com/scm/PLAT/svc.git",
    ),
]


async def test_the_other_forges_publishes_are_recorded_with_their_tree(harness: Any) -> None:
    """No integration is configured: a rehearsal asks no forge anything."""
    for action, given, remote, pushed in FORGE_PUBLISHES:
        steps = [FETCH, {"id": "publish", "action": action, "input": given}]
        output = {"links": [{"title": "Repo", "url": "${{ steps.publish.output.remoteUrl }}"}]}
        result = await harness.runner.dry_run(
            template(steps, output), {"name": "svc"}, {}, FILES, rehearsal=Rehearsal()
        )
        assert "error" not in result, (action, result)
        (publish,) = result["recorded"]
        assert publish["action"] == action and publish["remote"] == pushed
        assert sorted(decoded(publish["files"])) == ["README.md", "catalog-info.yaml", "run.sh"]
        assert result["output"]["links"] == [{"title": "Repo", "url": remote}]


FORGE_REQUESTS = [
    (
        "publish:azure:pull-request",
        {
            "repoUrl": "dev.azure.com?organization=acme&project=p&repo=cat",
            "sourceBranchName": "b",
            "title": "T",
            "description": "D",
        },
        ("remoteUrl", "https://dev.azure.com/acme/p/_git/cat/pullrequest/1"),
    ),
    (
        "publish:gitlab:merge-request",
        {"repoUrl": "gitlab.example.com?owner=acme&repo=cat", "branchName": "b", "title": "T"},
        ("mergeRequestUrl", "https://gitlab.example.com/acme/cat/-/merge_requests/1"),
    ),
    (
        "publish:bitbucketCloud:pull-request",
        {"repoUrl": "bitbucket.org?workspace=acme&repo=cat", "sourceBranch": "b", "title": "T"},
        ("pullRequestUrl", "https://bitbucket.org/acme/cat/pull-requests/1"),
    ),
    (
        "publish:bitbucketServer:pull-request",
        {"repoUrl": "bb.example.com?project=P&repo=cat", "sourceBranch": "b", "title": "T"},
        ("pullRequestUrl", "https://bb.example.com/projects/P/repos/cat/pull-requests/1"),
    ),
]


async def test_the_other_forges_requests_are_recorded_with_their_branch(harness: Any) -> None:
    for action, given, (name, url) in FORGE_REQUESTS:
        steps = [FETCH, {"id": "pr", "action": action, "input": given}]
        output = {"links": [{"title": "PR", "url": f"${{{{ steps.pr.output.{name} }}}}"}]}
        result = await harness.runner.dry_run(
            template(steps, output), {"name": "svc"}, {}, FILES, rehearsal=Rehearsal()
        )
        assert "error" not in result, (action, result)
        (recorded,) = result["recorded"]
        assert recorded["action"] == action and recorded["branch"] == "b"
        assert sorted(decoded(recorded["files"])) == ["README.md", "catalog-info.yaml", "run.sh"]
        assert result["output"]["links"] == [{"title": "PR", "url": url}]
