"""``publish:git`` — commit the workspace and push it to any git remote.

The portable form of Backstage's ``publish:github``: no provider API, just git,
so it works with GitHub, GitLab, Gitea or a bare repository on disk. Credentials
travel in the child's environment as an HTTP header, never on its command line
(visible in ``ps``) and never in a log line.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import Field

from falsework.actions.context import ActionContext
from falsework.actions.contract import ActionInput, action
from falsework.actions.sources import run_git, safe_url
from falsework.errors import ActionError

SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:|^[\w-]+:(?!/)")  # git@host:org/repo.git


class PublishGitInput(ActionInput):
    remote_url: str = Field(
        description="The git remote to push to: https://…, ssh://…, file:///…/repo.git or a "
        "local path (a local remote that does not exist yet is created as a bare repository)."
    )
    branch: str = Field("main", description="The branch to push (created if missing).")
    source_path: str = Field("./", description="Workspace folder to publish.")
    git_commit_message: str = Field("initial commit", description="The commit message.")
    git_author_name: str = Field("Scaffolder", description="Commit author and committer name.")
    git_author_email: str = Field(
        "scaffolder@falsework.invalid", description="Commit author and committer email."
    )
    username: str = Field(
        "x-access-token", description="User name sent with `token` to an HTTP(S) remote."
    )
    token: str | None = Field(
        None, description="Credential for an HTTP(S) remote, usually `${{ secrets.TOKEN }}`."
    )
    force: bool = Field(False, description="Force-push (replace the branch's history).")


@action(
    id="publish:git",
    description="Initialises a git repository in the workspace (or a sub-folder), commits "
    "its contents and pushes them to a remote branch.",
    input=PublishGitInput,
    output={
        "type": "object",
        "properties": {
            "remoteUrl": {"type": "string", "description": "The remote pushed to."},
            "commitHash": {"type": "string", "description": "The commit pushed."},
            "repoContentsUrl": {
                "type": "string",
                "description": "Where the pushed contents can be read.",
            },
        },
    },
    examples=[
        (
            "Publish the workspace to a repository",
            "steps:\n  - action: publish:git\n    id: publish\n    name: Publish\n"
            "    input:\n      remoteUrl: file:///srv/git/my-service.git\n"
            "      gitCommitMessage: Initial commit from Falsework\n",
        ),
        (
            "Publish a sub-folder to an HTTPS remote with a token",
            "steps:\n  - action: publish:git\n    id: publish\n    name: Publish\n"
            "    input:\n      remoteUrl: https://git.example.com/team/my-service.git\n"
            "      sourcePath: service\n      branch: develop\n"
            "      token: ${{ secrets.GIT_TOKEN }}\n",
        ),
    ],
)
async def publish_git(ctx: ActionContext[PublishGitInput]) -> None:
    inp = ctx.input
    source = ctx.resolve_path(inp.source_path)
    if not source.is_dir():
        raise ActionError(f"sourcePath {inp.source_path!r} is not a folder in the workspace")

    async def publish() -> dict[str, str]:
        env = {
            "GIT_AUTHOR_NAME": inp.git_author_name,
            "GIT_AUTHOR_EMAIL": inp.git_author_email,
            "GIT_COMMITTER_NAME": inp.git_author_name,
            "GIT_COMMITTER_EMAIL": inp.git_author_email,
        }
        cfg = ["-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"]
        ctx.logger.info(f"Initialising git repository in {inp.source_path}")
        await run_git(["git", "init", "-q", "-b", inp.branch], cwd=source, env=env)
        await run_git(["git", "checkout", "-q", "-B", inp.branch], cwd=source, env=env)
        await run_git(["git", "add", "-A"], cwd=source, env=env)
        await run_git(
            ["git", *cfg, "commit", "-q", "--allow-empty", "-m", inp.git_commit_message],
            cwd=source,
            env=env,
        )
        commit = (await run_git(["git", "rev-parse", "HEAD"], cwd=source, env=env)).strip()
        ctx.logger.info(f"Committed {commit} as {inp.git_author_name} <{inp.git_author_email}>")
        remote = inp.remote_url
        local = _local_remote(remote)
        if local is not None:
            # A local remote is resolved against the process's folder, not the
            # workspace git runs in, and created (bare) the first time.
            remote = str(local)
            if not local.exists():
                ctx.logger.info(f"Creating bare repository {local}")
                await run_git(["git", "init", "-q", "--bare", "-b", inp.branch, remote], cwd=None)
        push = ["git", "push", "-q", *(["--force"] if inp.force else [])]
        push += ["--", remote, f"HEAD:refs/heads/{inp.branch}"]
        await run_git(push, cwd=source, env={**env, **_auth_env(inp)})
        ctx.logger.info(f"Pushed branch {inp.branch} to {safe_url(inp.remote_url)}")
        return {
            "remoteUrl": inp.remote_url,
            "commitHash": commit,
            "repoContentsUrl": _contents_url(inp.remote_url, inp.branch),
        }

    # Checkpointed: a retried task reports the earlier push instead of pushing again.
    result: dict[str, Any] = await ctx.checkpoint("push", publish)
    for name, value in result.items():
        ctx.output(name, value)


def _local_remote(url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme or SCP_LIKE.match(url):
        return None
    return Path(os.path.abspath(url))


def _auth_env(inp: PublishGitInput) -> dict[str, str]:
    if not inp.token or urlsplit(inp.remote_url).scheme not in ("http", "https"):
        return {}
    basic = base64.b64encode(f"{inp.username}:{inp.token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def _contents_url(remote: str, branch: str) -> str:
    parts = urlsplit(remote)
    if parts.scheme in ("http", "https"):
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        base = parts._replace(netloc=netloc, query="", fragment="").geturl()
        return f"{base.removesuffix('/').removesuffix('.git')}/tree/{branch}"
    return f"{remote}#{branch}"
