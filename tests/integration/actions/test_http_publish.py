"""http:request against a real loopback server; publish:git into a real bare repo."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest


async def test_post_then_poll_until_condition(harness: Any, argo: Any, one_step: Any) -> None:
    base = f"{argo.url}/api/v1/workflows/ci"
    result = await harness.run(
        [
            {
                "id": "submit",
                "action": "http:request",
                "input": {
                    "method": "POST",
                    "url": base,
                    "headers": {"Authorization": "Bearer ${{ secrets.TOKEN }}"},
                    "body": {"workflow": {"name": "${{ parameters.name }}"}},
                },
            },
            {
                "id": "wait",
                "action": "http:request",
                "input": {
                    "url": base + "/${{ steps.submit.output.body.metadata.name }}",
                    "until": "${{ response.body.status.phase in ['Succeeded', 'Failed'] }}",
                    "interval": 0.01,
                    "maxWait": 30,
                },
            },
        ],
        {"name": "build"},
        secrets={"TOKEN": "s3cr3t-token"},
        output={
            "text": [{"title": "phase", "content": "${{ steps.wait.output.body.status.phase }}"}]
        },
    )
    assert result.error is None, result.error
    assert result.output == {"text": [{"title": "phase", "content": "Succeeded"}]}
    post = argo.requests[0]
    assert post["body"] == {"workflow": {"name": "build"}}
    assert post["headers"]["Authorization"] == "Bearer s3cr3t-token"
    assert argo.polls == 3
    assert result.steps["submit"]["output"]["code"] == 201
    assert all("s3cr3t-token" not in m for m in result.logs())


async def test_poll_gives_up_after_max_wait(harness: Any, argo: Any, one_step: Any) -> None:
    result = await harness.run(
        [
            one_step(
                "http:request",
                url=f"{argo.url}/x/never",
                until="${{ response.code == 500 }}",
                interval=0.01,
                maxWait=0.05,
            )
        ]
    )
    assert result.error is not None and "still false" in result.error.message


async def test_bad_response(harness: Any, argo: Any, one_step: Any) -> None:
    failed = await harness.run([one_step("http:request", url=f"{argo.url}/missing")])
    assert failed.error is not None and "404" in failed.error.message
    kept = await harness.run(
        [one_step("http:request", url=f"{argo.url}/missing", continueOnBadResponse=True)]
    )
    assert kept.error is None and kept.steps["s"]["output"]["code"] == 404


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    path = tmp_path / "remotes" / "remote.git"  # the harness runner's remotes folder
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


async def test_publish_git_to_bare_repo(harness: Any, bare: Path, one_step: Any) -> None:
    (harness.workspace / "svc").mkdir()
    (harness.workspace / "svc/README.md").write_text("# svc\n")
    (harness.workspace / "other.txt").write_text("not published")
    result = await harness.run(
        [
            one_step(
                "publish:git",
                remoteUrl=bare.as_uri(),
                sourcePath="svc",
                branch="trunk",
                gitCommitMessage="first",
                gitAuthorName="Ada",
                gitAuthorEmail="ada@example.com",
            )
        ]
    )
    assert result.error is None, result.error
    out = result.steps["s"]["output"]
    assert git("rev-parse", "trunk", cwd=bare).strip() == out["commitHash"]
    assert git("show", "trunk:README.md", cwd=bare) == "# svc\n"
    assert git("ls-tree", "--name-only", "trunk", cwd=bare).split() == ["README.md"]
    assert (
        git("log", "-1", "--format=%an <%ae> %s", "trunk", cwd=bare).strip()
        == "Ada <ada@example.com> first"
    )
    assert out["remoteUrl"] == bare.as_uri() and out["repoContentsUrl"] == f"{bare.as_uri()}#trunk"


async def test_publish_git_never_shows_the_token(harness: Any, one_step: Any) -> None:
    (harness.workspace / "f.txt").write_text("x")
    result = await harness.run(
        [
            one_step(
                "publish:git", remoteUrl="http://127.0.0.1:9/nobody.git", token="${{ secrets.GIT }}"
            )
        ],
        secrets={"GIT": "ghp_topsecret"},
    )
    assert result.error is not None
    text = repr(result.io.events) + repr(result.io.steps) + result.error.message
    assert "ghp_topsecret" not in text


async def test_publish_source_path_traversal(harness: Any, one_step: Any) -> None:
    for bad in ("../../../", "/etc"):
        result = await harness.run(
            [one_step("publish:git", remoteUrl="file:///x.git", sourcePath=bad)]
        )
        assert result.error is not None and result.error.name == "UnsafePathError"
