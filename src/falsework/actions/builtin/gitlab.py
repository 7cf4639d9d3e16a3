"""The GitLab actions of Backstage's ``@backstage/plugin-scaffolder-backend-module-gitlab``
that templates end with, with its ids, inputs, outputs and defaults:
``publish:gitlab`` and ``publish:gitlab:merge-request``.

REST calls go through forgeapi.py (the egress policy applies); git transfer through
gitpush.py, where Backstage's merge request commits through GitLab's Commits API: the
same commit lands on the same branch, made by git. The host, API URL and credential
come from ``integrations.gitlab[]``; a step's ``token`` input wins over the configured
one (sent as an OAuth bearer token, as Backstage does; the configured one as
``PRIVATE-TOKEN``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import ConfigDict, Field

from falsework.actions.builtin.forge import (
    ChangeRequest,
    FirstPush,
    Forge,
    GitAuth,
    Proposal,
    Repository,
    drafted_title,
    made_earlier,
    opened_earlier,
    push_contents,
)
from falsework.actions.builtin.forgeapi import (
    ApiError,
    ForgeApi,
    credential,
    forge_api,
    refuse_signing,
)
from falsework.actions.builtin.gitpush import (
    Author,
    push_changes,
    source_folder,
)
from falsework.actions.context import ActionContext
from falsework.actions.contract import Action, ActionInput, action
from falsework.actions.integrations import ForgeHost, Integrations, Kind, RepoUrl
from falsework.actions.rehearsal import PLACEHOLDER_COMMIT
from falsework.confine import Tree, relative, walk
from falsework.errors import InputError

REPO_URL = (
    "Accepts the format `gitlab.com?repo=project_name&owner=group_name` where "
    "`project_name` is the repository name and `group_name` is a group or username"
)
TOKEN = "The token to use for authorization to GitLab (default: the configured integration's)"
GIT_USER = "oauth2"  # GitLab takes a token as the password of any user name


def _headers(token: str, from_step: bool) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if from_step else {"PRIVATE-TOKEN": token}


def _id(value: str | int) -> str:
    """A project, group or user id or path as it goes in a GitLab API path."""
    return quote(str(value), safe="")


class _GitlabNames(ActionInput):
    """GitLab's own attribute names (snake_case), as Backstage passes them."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectSettings(_GitlabNames):
    """Attributes of GitLab's create-project call (Backstage's ``settings``)."""

    path: str | None = Field(None, description="Repository name for the new project")
    auto_devops_enabled: bool | None = Field(None, description="Enable Auto DevOps")
    ci_config_path: str | None = Field(None, description="Custom CI config path")
    description: str | None = Field(None, description="Short project description")
    merge_method: Literal["merge", "rebase_merge", "ff"] | None = Field(
        None, description="Merge method"
    )
    squash_option: Literal["default_off", "default_on", "never", "always"] | None = Field(
        None, description="Squash option"
    )
    topics: list[str] | None = Field(None, description="Topic labels")
    visibility: Literal["private", "public", "internal"] | None = Field(
        None, description="The visibility of the project (default private)"
    )
    only_allow_merge_if_all_discussions_are_resolved: bool | None = Field(
        None, description="Merge only when all threads are resolved"
    )
    only_allow_merge_if_pipeline_succeeds: bool | None = Field(
        None, description="Merge only with a successful pipeline"
    )
    allow_merge_on_skipped_pipeline: bool | None = Field(
        None, description="A skipped pipeline counts as successful"
    )


class BranchSetting(ActionInput):
    name: str = Field(description="Branch name")
    protect: bool = Field(False, description="Mark the branch protected")
    create: bool = Field(False, description="Create the branch from ref when missing")
    ref: str = Field("master", description="Branch reference to create the branch from")


class ProjectVariable(_GitlabNames):
    key: str = Field(
        pattern=r"^[A-Za-z0-9_]{1,255}$",
        description="The key (A-Z, a-z, 0-9 and _; at most 255 characters)",
    )
    value: str = Field(description="The value")
    description: str | None = Field(None, description="The description")
    variable_type: Literal["env_var", "file"] = Field("env_var", description="The type")
    protected: bool = Field(False, description="Only exported to protected branches and tags")
    masked: bool = Field(False, description="Masked in job logs")
    raw: bool = Field(False, description="Not expanded")
    environment_scope: str = Field("*", description="The environment scope")


class PublishGitlabInput(ActionInput):
    repo_url: str = Field(description=REPO_URL)
    repo_visibility: Literal["private", "public", "internal"] = Field(
        "private", description="Visibility of the repository (deprecated: settings.visibility)"
    )
    default_branch: str = Field("master", description="The default branch")
    git_commit_message: str = Field("initial commit", description="The commit message")
    git_author_name: str | None = Field(None, description="Commit author name (Scaffolder)")
    git_author_email: str | None = Field(None, description="Commit author email")
    sign_commit: bool | None = Field(None, description="Sign the commit (no key configured)")
    source_path: str | bool | None = Field(
        None,
        description="Workspace folder to publish as the repository root; omitted or true: "
        "the whole workspace; false: the repository is created empty",
    )
    skip_existing: bool = Field(False, description="Do not publish when the repository exists")
    token: str | None = Field(None, description=TOKEN)
    set_user_as_owner: bool = Field(
        False,
        description="Make the token's user an owner of the new project (needs the configured "
        "integration's token)",
    )
    topics: list[str] | None = Field(None, description="Topic labels (deprecated: settings.topics)")
    settings: ProjectSettings | None = Field(None, description="Additional project settings")
    branches: list[BranchSetting] | None = Field(None, description="Branches to create and protect")
    project_variables: list[ProjectVariable] | None = Field(
        None, description="CI/CD variables of the project"
    )


async def record_publish_gitlab(ctx: ActionContext[PublishGitlabInput]) -> None:
    inp = ctx.input
    assert ctx.recording is not None
    repo = RepoUrl.parse(inp.repo_url)
    owner = repo.need_owner()
    web = f"https://{repo.host}/{owner}/{repo.repo}"
    if inp.source_path is not False:
        source = await source_folder(ctx, _source(inp.source_path))
        await ctx.in_thread(ctx.recording.tree, source)
    ctx.recording.note(remote=f"{web}.git", branch=inp.default_branch)
    ctx.logger.info(f"Would create the GitLab project {web} and push {inp.default_branch}")
    ctx.output("remoteUrl", web)
    ctx.output("repoContentsUrl", f"{web}/-/blob/{inp.default_branch}")
    ctx.output("projectId", 0)
    ctx.output("commitHash", PLACEHOLDER_COMMIT)
    ctx.output("created", True)


def _source(value: str | bool | None) -> str | None:
    return value if isinstance(value, str) else None


@action(
    settings=Integrations,
    id="publish:gitlab",
    recorder=record_publish_gitlab,
    description="Initializes a git repository of the content in the workspace, and "
    "publishes it to GitLab.",
    input=PublishGitlabInput,
    output={
        "type": "object",
        "properties": {
            "remoteUrl": {"type": "string", "description": "A URL to the repository"},
            "repoContentsUrl": {"type": "string", "description": "A URL to its root"},
            "projectId": {"type": "number", "description": "The ID of the project"},
            "commitHash": {"type": "string", "description": "The initial commit's hash"},
            "created": {"type": "boolean", "description": "Whether the project was created"},
        },
    },
    examples=[
        (
            "Publish the workspace to a new private project",
            "steps:\n  - id: publish\n    name: Publish\n    action: publish:gitlab\n"
            "    input:\n      repoUrl: gitlab.com?owner=acme&repo=my-service\n"
            "      defaultBranch: main\n",
        ),
        (
            "An internal project with settings, a protected branch and a CI variable",
            "steps:\n  - id: publish\n    name: Publish\n    action: publish:gitlab\n"
            "    input:\n      repoUrl: gitlab.com?owner=acme&repo=my-service\n"
            "      defaultBranch: main\n      settings:\n        visibility: internal\n"
            "        description: My service\n        topics: [python]\n"
            "      branches:\n        - name: main\n          protect: true\n"
            "        - name: develop\n          create: true\n          ref: main\n"
            "      projectVariables:\n        - key: REGION\n          value: eu\n",
        ),
    ],
)
async def publish_gitlab(
    ctx: ActionContext[PublishGitlabInput], integrations: Integrations
) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    if not repo.owner:
        raise InputError(f"No owner provided for host: {repo.host}, and repo {repo.repo}")
    owner = repo.owner
    what = "publish:gitlab"
    host, token = credential(integrations, "gitlab", repo, owner, inp.token, what)
    refuse_signing(inp.sign_commit)
    async with forge_api(integrations, host, _headers(token, bool(inp.token)), what) as api:
        try:
            namespace = await api.call("GET", f"/namespaces/{_id(owner)}")
        except ApiError as exc:
            if exc.status == 404:
                raise InputError(
                    f"The namespace {owner} is not found or the user doesn't have "
                    "permissions to access it"
                ) from None
            raise
        user = await api.call("GET", "/user")
        kind = "users" if namespace["kind"] == "user" else "groups"
        found = await api.call(
            "GET", f"/{kind}/{_id(owner)}/projects", params={"search": repo.repo}
        )
        existing = next((p for p in found if p.get("path") == repo.repo), None)
        if inp.skip_existing and existing is not None:
            ctx.logger.info(f"Repo {repo.repo} already exists in namespace {owner}.")
            remote = str(existing["http_url_to_repo"]).removesuffix(".git")
            ctx.output("remoteUrl", remote)
            ctx.output("repoContentsUrl", f"{remote}/-/blob/{existing['default_branch']}")
            ctx.output("projectId", existing["id"])
            ctx.output("created", False)
            return

        async def create() -> dict[str, Any]:
            ctx.logger.info(f"Creating repo {repo.repo} in namespace {owner}.")
            body: dict[str, Any] = {
                "namespace_id": namespace["id"],
                "name": repo.repo,
                "visibility": inp.repo_visibility,
            }
            if inp.topics:
                body["topics"] = inp.topics
            if inp.settings is not None:
                body.update(inp.settings.model_dump(exclude_none=True))
            try:
                made = await api.call("POST", "/projects", json=body)
            except ApiError as exc:
                path = (inp.settings.path if inp.settings else None) or repo.repo
                made = await made_earlier(
                    ctx,
                    exc,
                    400,  # GitLab's answer for a path in use ("has already been taken")
                    lambda: api.call("GET", f"/projects/{_id(f'{owner}/{path}')}"),
                    lambda found: str(found["http_url_to_repo"]),
                    inp.default_branch,
                    integrations.git,
                    GitAuth(token, GIT_USER),
                )
            return {"id": made["id"], "clone": made["http_url_to_repo"]}

        made = await ctx.checkpoint(f"create.gitlab.project.{owner}.{repo.repo}", create)
        project_id = int(made["id"])
        if inp.set_user_as_owner:
            user_id = int(user["id"])
            await ctx.checkpoint(
                "owner", lambda: _add_owner(ctx, integrations, host, owner, project_id, user_id)
            )
        remote = str(made["clone"]).removesuffix(".git")
        if inp.source_path is not False:
            push = FirstPush(
                _source(inp.source_path),
                inp.default_branch,
                inp.git_commit_message or "initial commit",
                Author.given(inp.git_author_name, inp.git_author_email),
            )
            git = GitAuth(token, GIT_USER)
            commit = await push_contents(ctx, "push", made["clone"], push, integrations.git, git)
            await ctx.checkpoint("branches", lambda: _branches(ctx, api, project_id, inp))
            ctx.output("commitHash", commit)
        await ctx.checkpoint("variables", lambda: _variables(api, project_id, inp))
    ctx.output("remoteUrl", remote)
    ctx.output("repoContentsUrl", f"{remote}/-/blob/{inp.default_branch}")
    ctx.output("projectId", project_id)
    ctx.output("created", True)


async def _add_owner(
    ctx: ActionContext[Any],
    integrations: Integrations,
    host: ForgeHost,
    owner: str,
    project_id: int,
    user_id: int,
) -> None:
    """setUserAsOwner: the configured token (an admin's) makes the step token's user an
    owner, as Backstage does; only a configured token whose owners cover ``owner``."""
    admin = host.token_for(owner)
    if not admin:
        ctx.logger.warning(
            "setUserAsOwner: no configured GitLab token covers this namespace; the user was "
            "not made an owner"
        )
        return
    async with forge_api(integrations, host, _headers(admin, False), "publish:gitlab") as api:
        body = {"user_id": user_id, "access_level": 50}
        await api.call("POST", f"/projects/{project_id}/members", json=body)


async def _branches(
    ctx: ActionContext[Any], api: ForgeApi, project_id: int, inp: PublishGitlabInput
) -> None:
    for branch in inp.branches or []:
        if branch.create:
            try:
                body = {"branch": branch.name, "ref": branch.ref}
                await api.call("POST", f"/projects/{project_id}/repository/branches", json=body)
            except ApiError as exc:
                raise InputError(
                    f"Branch creation failed for {branch.name}. {exc.status}: {exc.detail}"
                ) from None
            ctx.logger.info(f"Branch {branch.name} created for {project_id} with ref {branch.ref}")
        if branch.protect:
            try:
                body = {"name": branch.name}
                await api.call("POST", f"/projects/{project_id}/protected_branches", json=body)
            except ApiError as exc:
                raise InputError(
                    f"Branch protection failed for {branch.name}. {exc.status}: {exc.detail}"
                ) from None
            ctx.logger.info(f"Branch {branch.name} protected for {project_id}")


async def _variables(api: ForgeApi, project_id: int, inp: PublishGitlabInput) -> None:
    for variable in inp.project_variables or []:
        try:
            body = variable.model_dump(exclude_none=True)
            await api.call("POST", f"/projects/{project_id}/variables", json=body)
        except ApiError as exc:
            raise InputError(
                f"Environment variable creation failed for {variable.key}. "
                f"{exc.status}: {exc.detail}"
            ) from None


# -- publish:gitlab:merge-request ----------------------------------------------------
class MergeRequestInput(ActionInput):
    repo_url: str = Field(description=REPO_URL)
    title: str = Field(description="The name for the merge request")
    description: str | None = Field(None, description="The description of the merge request")
    branch_name: str = Field(description="The source branch name of the merge request")
    target_branch_name: str | None = Field(
        None, description="The target branch name (default: the project's default branch)"
    )
    source_path: str | None = Field(
        None,
        description="Subdirectory of the workspace to copy changes from (when absent, "
        "targetPath is used, for backward compatibility; `.` circumvents that)",
    )
    target_path: str | None = Field(
        None, description="Subdirectory of the repository to apply changes to"
    )
    token: str | None = Field(None, description=TOKEN)
    commit_action: Literal["create", "delete", "update", "skip", "auto"] | None = Field(
        None,
        description="What the commit does with the files: auto (default) writes them, "
        "create writes files the target must not have, update files it must have, delete "
        "removes them, skip commits nothing",
    )
    projectid: str | None = Field(
        None, description="Deprecated: give the project as `project=` in repoUrl"
    )
    remove_source_branch: bool | None = Field(
        None, description="Delete the source branch once merged (default false)"
    )
    assignee: str | None = Field(None, description="User the merge request is assigned to")
    reviewers: list[str] | None = Field(None, description="Users asked to review")
    assign_reviewers_from_approval_rules: bool | None = Field(
        None, description="Add the eligible approvers of the approval rules as reviewers"
    )
    labels: str | list[str] | None = Field(None, description="Labels of the merge request")


async def record_merge_request(ctx: ActionContext[MergeRequestInput]) -> None:
    inp = ctx.input
    assert ctx.recording is not None
    repo = RepoUrl.parse(inp.repo_url)
    project = repo.project or f"{repo.need_owner()}/{repo.repo}"
    target = inp.target_branch_name or "main"  # the project's default is not asked for
    if inp.commit_action != "skip":
        source = await source_folder(ctx, inp.source_path or inp.target_path)
        await ctx.in_thread(ctx.recording.tree, source)
    ctx.recording.note(branch=inp.branch_name, base=target, targetPath=inp.target_path or "")
    ctx.logger.info(f"Would open a merge request on {project} from {inp.branch_name} into {target}")
    ctx.output("projectid", project)
    ctx.output("projectPath", project)
    ctx.output("targetBranchName", target)
    ctx.output("mergeRequestUrl", f"https://{repo.host}/{project}/-/merge_requests/1")


@action(
    settings=Integrations,
    id="publish:gitlab:merge-request",
    recorder=record_merge_request,
    description="Creates a merge request on a GitLab project with the workspace's contents "
    "committed to a new branch.",
    input=MergeRequestInput,
    output={
        "type": "object",
        "properties": {
            "targetBranchName": {"type": "string", "description": "Target branch name"},
            "projectid": {"type": "string", "description": "GitLab Project id/Name(slug)"},
            "projectPath": {"type": "string", "description": "GitLab Project path"},
            "mergeRequestUrl": {"type": "string", "description": "Link to the merge request"},
        },
    },
    examples=[
        (
            "Open a merge request with the workspace's files under services/",
            "steps:\n  - id: mr\n    name: Merge request\n"
            "    action: publish:gitlab:merge-request\n"
            "    input:\n      repoUrl: gitlab.com?owner=acme&repo=catalog\n"
            "      branchName: add-my-service\n      title: Add my-service\n"
            "      description: Registers my-service\n      targetPath: services\n"
            "      sourcePath: .\n      labels: [scaffolder]\n",
        )
    ],
)
async def publish_gitlab_merge_request(
    ctx: ActionContext[MergeRequestInput], integrations: Integrations
) -> None:
    inp = ctx.input
    what = "publish:gitlab:merge-request"
    repo = RepoUrl.parse(inp.repo_url)
    if not repo.project and not repo.owner:
        raise InputError(f"{what}: repoUrl {inp.repo_url!r} names no owner (or project)")
    project = repo.project or f"{repo.owner}/{repo.repo}"
    pid = _id(project)
    host, token = credential(integrations, "gitlab", repo, repo.owner, inp.token, what)
    async with forge_api(integrations, host, _headers(token, bool(inp.token)), what) as api:
        assignee = None
        if inp.assignee is not None:
            assignee = await _user_id(ctx, api, inp.assignee)
        reviewer_ids: list[int] | None = None
        if inp.reviewers is not None:
            found = [await _user_id(ctx, api, name) for name in inp.reviewers]
            reviewer_ids = [i for i in found if i is not None]
        target = inp.target_branch_name
        if not target:
            target = (await api.call("GET", f"/projects/{pid}")).get("default_branch")
            if not isinstance(target, str) or not target:
                raise InputError(
                    f"The branch creation failed. Target branch was not provided, and could "
                    f"not find default branch from project settings. Project: {project}"
                )

        async def commit() -> str | None:
            return await _commit(ctx, api, integrations, inp, pid, target, token)

        await ctx.checkpoint(f"commit.to.{project}.{inp.branch_name}", commit)

        async def create() -> dict[str, Any]:
            forge = GitlabForge(api, project, token)
            earlier = await opened_earlier(ctx, forge, inp.branch_name, target)
            if earlier is not None:
                return {"iid": earlier.number, "url": earlier.url}
            body: dict[str, Any] = {
                "source_branch": inp.branch_name,
                "target_branch": target,
                "title": inp.title,
                "remove_source_branch": bool(inp.remove_source_branch),
            }
            if inp.description is not None:
                body["description"] = inp.description
            if assignee is not None:
                body["assignee_id"] = assignee
            if reviewer_ids:
                body["reviewer_ids"] = reviewer_ids
            if inp.labels:
                labels = [inp.labels] if isinstance(inp.labels, str) else inp.labels
                body["labels"] = ",".join(labels)
            try:
                made = await api.call("POST", f"/projects/{pid}/merge_requests", json=body)
            except ApiError as exc:
                raise InputError(
                    f"Merge request creation failed. {exc.status}: {exc.detail}"
                ) from None
            ctx.logger.info(f"Merge request !{made['iid']}: {made['web_url']}")
            return {"iid": made["iid"], "url": made["web_url"]}

        made = await ctx.checkpoint(f"create.mr.{project}.{inp.branch_name}", create)
        if inp.assign_reviewers_from_approval_rules:

            async def assign() -> None:
                await _approvers(ctx, api, pid, int(made["iid"]), reviewer_ids or [])

            await ctx.checkpoint(f"create.mr.assign.reviewers.{project}.{inp.branch_name}", assign)
    ctx.output("projectid", project)
    ctx.output("targetBranchName", target)
    ctx.output("projectPath", project)
    ctx.output("mergeRequestUrl", made["url"])


async def _user_id(ctx: ActionContext[Any], api: ForgeApi, username: str) -> int | None:
    try:
        found = await api.call("GET", "/users", params={"username": username})
    except ApiError as exc:
        found, detail = [], exc.detail
    else:
        detail = "no such user"
    if found:
        return int(found[0]["id"])
    ctx.logger.warning(
        f"Failed to find gitlab user id for {username}: {detail}. Proceeding with MR "
        "creation without it."
    )
    return None


async def _commit(
    ctx: ActionContext[MergeRequestInput],
    api: ForgeApi,
    integrations: Integrations,
    inp: MergeRequestInput,
    pid: str,
    target: str,
    token: str,
) -> str | None:
    """The branch and its commit. As Backstage: an existing branch is refused when there
    are changes to commit (naming its open merge request), used as is with commitAction
    skip."""
    try:
        branch = await api.call(
            "GET", f"/projects/{pid}/repository/branches/{_id(inp.branch_name)}"
        )
    except ApiError as exc:
        if exc.status != 404:
            raise
        branch = None
    earlier = branch is not None and (await ctx.step_key()).earlier
    if branch is not None and not earlier:
        if inp.commit_action == "skip":
            ctx.logger.info(f"Using existing branch {inp.branch_name} without modification.")
            return None
        opened = await api.call(
            "GET",
            f"/projects/{pid}/merge_requests",
            params={"source_branch": inp.branch_name, "state": "opened"},
        )
        also = f" Additionally, there is a Merge Request for this branch: {opened[0]['web_url']}"
        raise InputError(
            "The branch creation failed because the branch already exists at: "
            f"{branch['web_url']}.{also if opened else ''}"
        )
    commit = None
    if inp.commit_action != "skip":
        me = await api.call("GET", "/user")
        source = await source_folder(ctx, inp.source_path or inp.target_path)
        files = await ctx.in_thread(_files, source)
        delete: list[str] = []
        if inp.commit_action == "delete":
            delete, source = files, ctx.create_temp_dir()
        commit, _ = await push_changes(
            ctx,
            source=source,
            remote=await _clone_url(api, pid),
            base=target,
            branch=inp.branch_name,
            target_path=inp.target_path,
            delete=delete,
            message=inp.title,
            author=Author.given(me.get("name"), me.get("email") or me.get("public_email")),
            policy=integrations.git,
            token=token,
            update=False,
            username=GIT_USER,
            check=_expect(inp.commit_action, files, inp.target_path, inp.branch_name),
        )
    if commit is None and not earlier:
        # nothing to commit: the branch is made from the target, as GitLab's API does
        body = {"branch": inp.branch_name, "ref": target}
        try:
            await api.call("POST", f"/projects/{pid}/repository/branches", json=body)
        except ApiError as exc:
            raise InputError(
                f"The branch creation failed. Please check that your repo does not already "
                f"contain a branch named '{inp.branch_name}'. {exc.status}: {exc.detail}"
            ) from None
    return commit


def _expect(
    mode: str | None, files: list[str], target_path: str | None, branch: str
) -> Callable[[Path], None]:
    """What GitLab's Commits API would refuse, refused before committing: ``create``
    of a file that exists in the target, ``update`` or ``delete`` of one that does not
    (``auto`` decides per file, as Backstage does)."""
    base = relative(target_path or "", "the repository")

    def check(work: Path) -> None:
        if mode not in ("create", "update", "delete"):
            return
        with Tree(work, where="the repository") as tree:
            for rel in files:
                path = f"{base}/{rel}" if base else rel
                exists = tree.lstat(path) is not None
                if mode == "create" and exists:
                    raise InputError(
                        f"Committing the changes to {branch} failed. Please check that none of "
                        f"the files created by the template already exists: {path} does"
                    )
                if mode != "create" and not exists:
                    raise InputError(
                        f"Committing the changes to {branch} failed: commitAction {mode} of "
                        f"{path}, which the target branch does not have"
                    )

    return check


async def _clone_url(api: ForgeApi, pid: str) -> str:
    return str((await api.call("GET", f"/projects/{pid}"))["http_url_to_repo"])


def _files(folder: Path) -> list[str]:
    """The files (and links) under ``folder``, relative, ``.git`` left out."""
    found = walk(folder, skip={".git"}, where="the published folder")
    return [entry.path for entry in found if entry.kind != "dir"]


async def _approvers(
    ctx: ActionContext[Any], api: ForgeApi, pid: str, iid: int, reviewers: list[int]
) -> None:
    """Reviewers from the merge request's approval rules (CODEOWNERS included), once
    GitLab has worked them out; a failure is a warning."""
    try:
        for _ in range(30):
            mr = await api.call("GET", f"/projects/{pid}/merge_requests/{iid}")
            if mr.get("detailed_merge_status") not in (
                "preparing",
                "approvals_syncing",
                "checking",
            ):
                break
            await asyncio.sleep(1)
        rules = await api.call("GET", f"/projects/{pid}/merge_requests/{iid}/approval_rules")
        eligible = [u["id"] for r in rules for u in r.get("eligible_approvers") or []]
        if eligible:
            ids = list(dict.fromkeys([*eligible, *reviewers]))
            body = {"reviewer_ids": ids}
            await api.call("PUT", f"/projects/{pid}/merge_requests/{iid}", json=body)
    except ApiError as exc:
        ctx.logger.warning(f"Failed to assign reviewers from approval rules: {exc.detail}.")


GITLAB_ACTIONS: tuple[Action[Any], ...] = (publish_gitlab, publish_gitlab_merge_request)


# -- the forge protocol (forge.py) ---------------------------------------------------
class GitlabForge:
    """A project on GitLab for the shared flows of forge.py."""

    kind: Kind = "gitlab"

    def __init__(self, api: ForgeApi, project: str, token: str) -> None:
        self.api = api
        self.pid = _id(project)
        self.git = GitAuth(token, GIT_USER)

    async def repository(self) -> Repository:
        found = await self.api.call("GET", f"/projects/{self.pid}")
        web = str(found.get("web_url") or str(found["http_url_to_repo"]).removesuffix(".git"))
        branch = str(found.get("default_branch") or "main")
        return Repository(str(found["http_url_to_repo"]), branch, web)

    def compare_url(self, repository: Repository, base: str, branch: str) -> str:
        return f"{repository.web_url}/-/compare/{base}...{branch}"

    async def find_open_change_request(self, branch: str, base: str) -> ChangeRequest | None:
        query = {"source_branch": branch, "target_branch": base, "state": "opened"}
        found = await self.api.call("GET", f"/projects/{self.pid}/merge_requests", params=query)
        return ChangeRequest(int(found[0]["iid"]), str(found[0]["web_url"])) if found else None

    async def open_change_request(self, proposal: Proposal) -> ChangeRequest:
        body = {
            "source_branch": proposal.branch,
            "target_branch": proposal.base,
            # GitLab's API has no draft flag: a title starting "Draft:" makes one
            "title": drafted_title(proposal.title, proposal.draft, "Draft:"),
            "description": proposal.description,
        }
        made = await self.api.call("POST", f"/projects/{self.pid}/merge_requests", json=body)
        return ChangeRequest(int(made["iid"]), str(made["web_url"]))


@asynccontextmanager
async def gitlab_forge(
    integrations: Integrations, repo: RepoUrl, token: str | None, what: str
) -> AsyncIterator[Forge]:
    if not repo.project and not repo.owner:
        raise InputError(f"{what}: repoUrl names no owner (or project)")
    project = repo.project or f"{repo.owner}/{repo.repo}"
    host, chosen = credential(integrations, "gitlab", repo, repo.owner, token, what)
    async with forge_api(integrations, host, _headers(chosen, bool(token)), what) as api:
        yield GitlabForge(api, project, chosen)
