"""The GitHub actions of Backstage's ``@backstage/plugin-scaffolder-backend-module-github``,
with its ids, inputs, outputs and defaults: ``publish:github``,
``publish:github:pull-request``, ``github:repo:create``, ``github:repo:push``,
``github:actions:dispatch``, ``github:webhook``, ``github:issues:label``.

REST calls go through ``githubkit`` (a client generated from GitHub's own OpenAPI
description, async, over httpx, so the server's transport hook applies); git transfer
goes through Falsework's git helper (gitpush.py). The host, API URL and credential come
from ``integrations.github[]``; a step's ``token`` input wins over the configured one.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.exception import GitHubException, RequestFailed
from nacl.public import PublicKey, SealedBox
from pydantic import Field, model_validator

from falsework.actions.builtin.forge import (
    ChangeRequest,
    Forge,
    GitAuth,
    Proposal,
    Repository,
    record_publish,
)
from falsework.actions.builtin.gitpush import (
    DEFAULT_AUTHOR_EMAIL,
    Author,
    push_changes,
    push_folder,
    source_folder,
)
from falsework.actions.context import ActionContext
from falsework.actions.contract import Action, ActionInput, action
from falsework.actions.git import GitPolicy, open_remote, pushed_before, run_git
from falsework.actions.integrations import ForgeHost, GithubApp, Integrations, Kind, RepoUrl
from falsework.actions.rehearsal import PLACEHOLDER_COMMIT
from falsework.errors import ActionError, InputError

REPO_URL = (
    "Accepts the format `github.com?repo=reponame&owner=owner` where `reponame` is the "
    "repository name and `owner` is an organization or username"
)
TOKEN = "The token to use for authorization to GitHub (default: the configured integration's)"


class Collaborator(ActionInput):
    access: str = Field(description="The access granted: pull, triage, push, maintain, admin.")
    user: str | None = Field(None, description="A user name or user entity reference.")
    team: str | None = Field(None, description="A team slug or group entity reference.")

    @model_validator(mode="after")
    def _one(self) -> Collaborator:
        if (self.user is None) == (self.team is None):
            raise ValueError("a collaborator names exactly one of user or team")
        return self


class Allowances(ActionInput):
    apps: list[str] | None = None
    users: list[str] | None = None
    teams: list[str] | None = None


class Restrictions(ActionInput):
    apps: list[str] | None = None
    users: list[str]
    teams: list[str]


class OidcCustomization(ActionInput):
    use_default: bool = Field(True, description="Use GitHub's default subject claim.")
    include_claim_keys: list[str] | None = Field(None, description="Claim keys to include.")


class RepoSettings(ActionInput):
    """What github:repo:create and publish:github set on a new repository."""

    repo_url: str = Field(description=REPO_URL)
    description: str | None = Field(None, description="Repository description.")
    homepage: str | None = Field(None, description="Repository homepage URL.")
    access: str | None = Field(
        None, description="Sets an admin collaborator on the repository: a user or `owner/team`."
    )
    repo_visibility: Literal["private", "public", "internal"] = Field(
        "private", description="Repository visibility."
    )
    delete_branch_on_merge: bool = Field(False, description="Delete head branches on merge.")
    allow_merge_commit: bool = Field(True, description="Allow merge commits.")
    allow_squash_merge: bool = Field(True, description="Allow squash merges.")
    squash_merge_commit_title: Literal["PR_TITLE", "COMMIT_OR_PR_TITLE"] = Field(
        "COMMIT_OR_PR_TITLE", description="Default title of squash merge commits."
    )
    squash_merge_commit_message: Literal["PR_BODY", "COMMIT_MESSAGES", "BLANK"] = Field(
        "COMMIT_MESSAGES", description="Default message of squash merge commits."
    )
    allow_rebase_merge: bool = Field(True, description="Allow rebase merges.")
    allow_auto_merge: bool = Field(False, description="Allow auto-merge.")
    allow_update_branch: bool = Field(
        False, description="Always suggest updating pull request branches."
    )
    collaborators: list[Collaborator] | None = Field(
        None, description="Users or teams given access (each: `access` and `user` or `team`)."
    )
    has_projects: bool | None = Field(None, description="Enable projects.")
    has_wiki: bool | None = Field(None, description="Enable the wiki.")
    has_issues: bool | None = Field(None, description="Enable issues.")
    token: str | None = Field(None, description=TOKEN)
    topics: list[str] | None = Field(None, description="Topics (lower-cased).")
    repo_variables: dict[str, str] | None = Field(None, description="Actions variables.")
    secrets: dict[str, str] | None = Field(None, description="Actions secrets (encrypted).")
    oidc_customization: OidcCustomization | None = Field(
        None, description="The OIDC subject claim of the repository's workflows."
    )
    custom_properties: dict[str, str | list[str]] | None = Field(
        None, description="Custom properties (organization repositories only)."
    )
    subscribe: bool | None = Field(None, description="Watch the repository.")


class ProtectionSettings(ActionInput):
    """Default-branch protection, as publish:github and github:repo:push set it."""

    require_code_owner_reviews: bool = Field(False, description="Require code owner reviews.")
    dismiss_stale_reviews: bool = Field(False, description="Dismiss stale approvals on push.")
    bypass_pull_request_allowances: Allowances | None = Field(
        None, description="Apps, users and teams allowed to bypass pull requests."
    )
    required_approving_review_count: int = Field(1, description="Approvals needed (0-6).")
    restrictions: Restrictions | None = Field(
        None, description="Apps, users and teams allowed to push to the branch."
    )
    required_status_check_contexts: list[str] = Field(
        default_factory=list, description="Status checks that must pass."
    )
    require_branches_to_be_up_to_date: bool = Field(
        True, description="Require branches to be up to date before merging."
    )
    required_conversation_resolution: bool = Field(
        False, description="Require conversations to be resolved."
    )
    require_last_push_approval: bool = Field(
        False, description="Require approval of the most recent push."
    )
    default_branch: str = Field("main", description="The default branch.")
    protect_default_branch: bool = Field(True, description="Protect the default branch.")
    protect_enforce_admins: bool = Field(True, description="Enforce protection on admins.")
    git_commit_message: str = Field("initial commit", description="The first commit's message.")
    git_author_name: str = Field("Scaffolder", description="Commit author name.")
    git_author_email: str = Field(DEFAULT_AUTHOR_EMAIL, description="Commit author email.")
    source_path: str | None = Field(None, description="Workspace folder to publish.")
    required_commit_signing: bool = Field(False, description="Require signed commits.")
    required_linear_history: bool = Field(False, description="Require a linear history.")


class PublishInput(RepoSettings, ProtectionSettings):
    pass


class RepoCreateInput(RepoSettings):
    auto_init: bool = Field(False, description="Create an initial commit with a README.")
    workflow_access: Literal["none", "organization", "user"] | None = Field(
        None, description="Which repositories' workflows may use this one's actions."
    )


class RepoPushInput(ProtectionSettings):
    repo_url: str = Field(description=REPO_URL)
    token: str | None = Field(None, description=TOKEN)


OUTPUTS = {
    "remoteUrl": {"type": "string", "description": "A URL to the repository with the provider"},
    "repoContentsUrl": {"type": "string", "description": "A URL to the root of the repository"},
    "commitHash": {"type": "string", "description": "The git commit hash of the first commit"},
}


# -- the client -------------------------------------------------------------
class _Client:
    def __init__(self, host: ForgeHost, token: str, integrations: Integrations) -> None:
        self.host = host
        self.token = token
        self.github = _github(host, TokenAuthStrategy(token), integrations)
        self.rest: Any = self.github.rest


def _github(host: ForgeHost, auth: Any, integrations: Integrations) -> GitHub[Any]:
    return GitHub(
        auth,
        base_url=host.api_base_url.rstrip("/") + "/",
        http_cache=False,
        auto_retry=False,
        follow_redirects=False,
        timeout=60.0,
        async_transport=integrations.http_transport(),
        user_agent="falsework",
        # The host judges the body: `internal` visibility, for one, is valid on
        # GitHub Enterprise but not in api.github.com's schema githubkit carries.
        rest_api_validate_body=False,
    )


async def _app_token(
    host: ForgeHost, owner: str, integrations: Integrations, what: str
) -> str | None:
    """An installation token of a configured GitHub App installed on ``owner`` (only
    apps whose allowedInstallationOwners, when given, list ``owner``)."""
    refused: list[GithubApp] = []
    for app in host.apps:
        allowed = [o.lower() for o in app.allowed_installation_owners]
        if allowed and owner.lower() not in allowed:
            refused.append(app)
            continue
        async with _github(host, AppAuthStrategy(app.app_id, app.private_key), integrations) as gh:
            installs = (await gh.rest.apps.async_list_installations()).json()
            for item in installs:
                if str((item.get("account") or {}).get("login", "")).lower() == owner.lower():
                    made = await gh.rest.apps.async_create_installation_access_token(item["id"])
                    return str(made.json()["token"])
    if refused and len(refused) == len(host.apps):
        raise InputError(
            f"{what}: the GitHub App configured for {host.host} may not act for {owner!r} "
            "(it is not in allowedInstallationOwners)"
        )
    return None


@asynccontextmanager
async def _client(integrations: Integrations, repo: RepoUrl, token: str | None, what: str) -> Any:
    host = integrations.require("github", repo.host, what)
    try:
        chosen = token or host.token_for(repo.owner)
        if not chosen and host.apps and repo.owner:
            chosen = await _app_token(host, repo.owner, integrations, what)
        if not chosen:
            raise InputError(
                f"{what}: no token available for host {repo.host} (owner {repo.owner}, repo "
                f"{repo.repo}); give the step a token input, or configure integrations.github "
                "with a token whose allowedOwners include that owner, or a GitHub App "
                "installed on it"
            )
        client = _Client(host, chosen, integrations)
        async with client.github:
            yield client
    except RequestFailed as exc:
        raise ActionError(f"{what}: GitHub answered {_failure(exc)}") from None
    except GitHubException as exc:
        raise ActionError(f"{what}: GitHub could not be reached ({exc})") from None


def _failure(exc: RequestFailed) -> str:
    response = exc.response
    try:
        message = response.json().get("message") or ""
    except ValueError:
        message = ""
    request = response.raw_request
    return f"{response.status_code} to {request.method} {request.url.path}: {message}".strip()


def _message(exc: Exception) -> str:
    return _failure(exc) if isinstance(exc, RequestFailed) else str(exc)


def _name(ref: str) -> str:
    """``group:default/team-a`` → ``team-a`` (an entity reference to a GitHub name)."""
    return re.sub(r"^.*[:/]", "", ref)


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


# -- shared steps -------------------------------------------------------------
async def _create_repository(
    ctx: ActionContext[Any],
    client: _Client,
    owner: str,
    name: str,
    inp: RepoSettings,
    git: GitPolicy,
    auto_init: bool | None = None,
    workflow_access: str | None = None,
) -> dict[str, Any]:
    """Create the repository and apply its settings. One that an interrupted
    earlier run of this step created (see ``_made_earlier``) is taken as created,
    and its settings applied again."""
    rest = client.rest
    kind = (await rest.users.async_get_by_username(owner)).json()["type"]
    if inp.access and inp.access.startswith(f"{owner}/"):
        team = inp.access.split("/", 1)[1]
        try:
            await rest.teams.async_get_by_name(owner, team)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                raise InputError(
                    f"access {inp.access!r}: no team {team!r} in organization {owner!r}"
                ) from None
            raise
    data = _compact(
        {
            "name": name,
            "description": inp.description,
            "homepage": inp.homepage,
            "private": inp.repo_visibility == "private",
            "has_issues": inp.has_issues,
            "has_projects": inp.has_projects,
            "has_wiki": inp.has_wiki,
            "auto_init": auto_init,
            "allow_squash_merge": inp.allow_squash_merge,
            "allow_merge_commit": inp.allow_merge_commit,
            "allow_rebase_merge": inp.allow_rebase_merge,
            "allow_auto_merge": inp.allow_auto_merge,
            "delete_branch_on_merge": inp.delete_branch_on_merge,
            "squash_merge_commit_title": inp.squash_merge_commit_title,
            "squash_merge_commit_message": inp.squash_merge_commit_message,
        }
    )
    try:
        if kind == "Organization":
            data["visibility"] = inp.repo_visibility
            if inp.custom_properties:
                data["custom_properties"] = inp.custom_properties
            made = await rest.repos.async_create_in_org(owner, data=data)
        else:
            if inp.repo_visibility == "internal":
                raise InputError(
                    f"repoVisibility 'internal' needs an organization; {owner!r} is a user"
                )
            made = await rest.repos.async_create_for_authenticated_user(data=data)
    except RequestFailed as exc:
        adopted = await _made_earlier(ctx, client, git, owner, name, exc, auto_init)
        if adopted is None:
            raise ActionError(
                f"Failed to create the {kind} repository {owner}/{name}, {_failure(exc)}"
            ) from None
        repo: dict[str, Any] = adopted
    else:
        repo = made.json()
        ctx.logger.info(f"Created repository {repo['full_name']}")
    if inp.allow_update_branch:
        # not a field of the create operations; set right after creation
        await rest.repos.async_update(owner, name, data={"allow_update_branch": True})
    if inp.access and inp.access.startswith(f"{owner}/"):
        team = inp.access.split("/", 1)[1]
        await rest.teams.async_add_or_update_repo_permissions_in_org(
            owner, team, owner, name, data={"permission": "admin"}
        )
    elif inp.access and inp.access != owner:
        await rest.repos.async_add_collaborator(
            owner, name, inp.access, data={"permission": "admin"}
        )
    for item in inp.collaborators or []:
        try:
            if item.user is not None:
                await rest.repos.async_add_collaborator(
                    owner, name, _name(item.user), data={"permission": item.access}
                )
            elif item.team is not None:
                await rest.teams.async_add_or_update_repo_permissions_in_org(
                    owner, _name(item.team), owner, name, data={"permission": item.access}
                )
        except RequestFailed as exc:
            who = item.user or item.team
            ctx.logger.warning(f"Skipping {item.access} access for {who}, {_failure(exc)}")
    if inp.topics:
        try:
            names = [t.lower() for t in inp.topics]
            await rest.repos.async_replace_all_topics(owner, name, data={"names": names})
        except RequestFailed as exc:
            ctx.logger.warning(f"Skipping topics {' '.join(inp.topics)}, {_failure(exc)}")
    for key, value in (inp.repo_variables or {}).items():
        try:
            await rest.actions.async_create_repo_variable(
                owner, name, data={"name": key, "value": value}
            )
        except RequestFailed as exc:
            if exc.response.status_code != 409:  # set by an earlier run (adopted repository)
                raise
            await rest.actions.async_update_repo_variable(
                owner, name, key, data={"name": key, "value": value}
            )
    if inp.secrets:
        public = (await rest.actions.async_get_repo_public_key(owner, name)).json()
        box = SealedBox(PublicKey(base64.b64decode(public["key"])))
        for key, value in inp.secrets.items():
            sealed = base64.b64encode(box.encrypt(value.encode())).decode()
            await rest.actions.async_create_or_update_repo_secret(
                owner, name, key, data={"encrypted_value": sealed, "key_id": public["key_id"]}
            )
    if inp.oidc_customization is not None:
        claim = _compact(
            {
                "use_default": inp.oidc_customization.use_default,
                "include_claim_keys": inp.oidc_customization.include_claim_keys,
            }
        )
        await rest.actions.async_set_custom_oidc_sub_claim_for_repo(owner, name, data=claim)
    if inp.subscribe:
        await rest.activity.async_set_repo_subscription(
            owner, name, data={"subscribed": True, "ignored": False}
        )
    if workflow_access:
        await rest.actions.async_set_workflow_access_to_repository(
            owner, name, data={"access_level": workflow_access}
        )
    return repo


async def _made_earlier(
    ctx: ActionContext[Any],
    client: _Client,
    git: GitPolicy,
    owner: str,
    name: str,
    refused: RequestFailed,
    auto_init: bool | None,
) -> dict[str, Any] | None:
    """The repository ``owner/name`` when creating it was refused because an
    interrupted earlier run of this step created it: the step had its key
    before (``StepKey.earlier``), and the repository is empty or its default
    branch holds the commit that run pushed (carrying the key). Anything else
    (someone else's repository, one GitHub filled with ``autoInit``) is None."""
    if refused.response.status_code != 422 or auto_init:
        return None
    key = await ctx.step_key()
    if not key.earlier:
        return None
    found: dict[str, Any] = (await client.rest.repos.async_get(owner, name)).json()
    remote = await open_remote(git, str(found["clone_url"]), token=client.token)
    local = ctx.create_temp_dir() / "probe.git"
    await run_git(git, ["init", "-q", "--bare", str(local)])
    heads = await run_git(git, ["ls-remote", "--heads", "--", remote.url], remote=remote)
    branch = str(found.get("default_branch") or "main")
    if heads.strip() and not await pushed_before(
        git, [f"--git-dir={local}"], remote, branch, key.value
    ):
        return None
    ctx.logger.info(
        f"Repository {found['full_name']} was created by an earlier run of this step: "
        "using it, applying its settings again"
    )
    return found


async def _push_and_protect(
    ctx: ActionContext[Any],
    client: _Client,
    integrations: Integrations,
    owner: str,
    name: str,
    remote: str,
    inp: ProtectionSettings,
) -> str:
    commit = await push_folder(
        ctx,
        source=await source_folder(ctx, inp.source_path),
        remote=remote,
        branch=inp.default_branch,
        message=inp.git_commit_message or "initial commit",
        author=Author(inp.git_author_name, inp.git_author_email),
        policy=integrations.git,
        token=client.token,
    )
    if inp.protect_default_branch:
        try:
            await _protect(client, owner, name, inp)
            ctx.logger.info(f"Protected branch {inp.default_branch}")
        except RequestFailed as exc:
            ctx.logger.warning(f"Skipping: default branch protection on '{name}', {_failure(exc)}")
    return commit


async def _protect(client: _Client, owner: str, name: str, inp: ProtectionSettings) -> None:
    reviews: dict[str, Any] = {
        "required_approving_review_count": inp.required_approving_review_count,
        "require_code_owner_reviews": inp.require_code_owner_reviews,
        "dismiss_stale_reviews": inp.dismiss_stale_reviews,
        "require_last_push_approval": inp.require_last_push_approval,
    }
    if inp.bypass_pull_request_allowances is not None:
        reviews["bypass_pull_request_allowances"] = _compact(
            inp.bypass_pull_request_allowances.model_dump()
        )
    data = {
        "required_status_checks": {
            "strict": inp.require_branches_to_be_up_to_date,
            "contexts": inp.required_status_check_contexts,
        },
        "enforce_admins": inp.protect_enforce_admins,
        "required_pull_request_reviews": reviews,
        "restrictions": (
            _compact(inp.restrictions.model_dump()) if inp.restrictions is not None else None
        ),
        "required_conversation_resolution": inp.required_conversation_resolution,
        "required_linear_history": inp.required_linear_history,
    }
    branch = inp.default_branch
    await client.rest.repos.async_update_branch_protection(owner, name, branch, data=data)
    if inp.required_commit_signing:
        await client.rest.repos.async_create_commit_signature_protection(owner, name, branch)


Factory = Callable[[Integrations], Action[Any]]


def _outputs(*names: str) -> dict[str, Any]:
    return {"type": "object", "properties": {n: OUTPUTS[n] for n in names}}


# -- recorders (rehearsals: what each action would do, nothing sent) ---------------
def _would_be(repo: RepoUrl) -> tuple[str, str]:
    """The clone and web URLs of ``repo`` as GitHub would answer them."""
    web = f"https://{repo.host}/{repo.need_owner()}/{repo.repo}"
    return f"{web}.git", web


async def _record_push(ctx: ActionContext[Any], source_path: str | None, branch: str) -> str:
    repo = RepoUrl.parse(ctx.input.repo_url)
    remote, web = _would_be(repo)
    outputs = {
        "remoteUrl": remote,
        "repoContentsUrl": f"{web}/blob/{branch}",
        "commitHash": PLACEHOLDER_COMMIT,
    }
    saying = f"Would push {source_path or './'} to {remote} (branch {branch})"
    await record_publish(ctx, source_path, remote, branch, saying, outputs)
    return web


async def record_publish_github(ctx: ActionContext[PublishInput]) -> None:
    inp = ctx.input
    remote, _ = _would_be(RepoUrl.parse(inp.repo_url))
    ctx.logger.info(f"Would create the {inp.repo_visibility} repository {remote}")
    await _record_push(ctx, inp.source_path, inp.default_branch)


async def record_repo_create(ctx: ActionContext[RepoCreateInput]) -> None:
    inp = ctx.input
    remote, _ = _would_be(RepoUrl.parse(inp.repo_url))
    ctx.logger.info(f"Would create the {inp.repo_visibility} repository {remote}")
    ctx.output("remoteUrl", remote)


async def record_repo_push(ctx: ActionContext[RepoPushInput]) -> None:
    await _record_push(ctx, ctx.input.source_path, ctx.input.default_branch)


async def record_pull_request(ctx: ActionContext[PullRequestInput]) -> None:
    inp = ctx.input
    assert ctx.recording is not None
    if inp.force_fork:
        raise InputError("publish:github:pull-request: forceFork is not supported yet")
    _, web = _would_be(RepoUrl.parse(inp.repo_url))
    # The repository's default branch is not asked for: main stands for it.
    base = inp.target_branch_name or "main"
    source = await source_folder(ctx, inp.source_path)
    await ctx.in_thread(ctx.recording.tree, source)
    ctx.recording.note(branch=inp.branch_name, base=base, targetPath=inp.target_path or "")
    ctx.logger.info(
        f"Would open a pull request on {web} from {inp.branch_name} into {base}: {inp.title!r}"
    )
    ctx.output("targetBranchName", base)
    ctx.output("remoteUrl", f"{web}/pull/1")
    ctx.output("pullRequestNumber", 1)


async def _record_call(ctx: ActionContext[Any]) -> None:
    """An action that only calls GitHub: its recorded input says it all."""
    RepoUrl.parse(ctx.input.repo_url).need_owner()
    ctx.logger.info(f"Would call GitHub for {ctx.input.repo_url}")


# -- publish:github ---------------------------------------------------------------
@action(
    settings=Integrations,
    id="publish:github",
    recorder=record_publish_github,
    description="Initializes a git repository of the workspace's contents and publishes "
    "it to GitHub: creates the repository (visibility, description, topics, "
    "collaborators and team access, Actions variables and secrets), pushes the first "
    "commit and protects the default branch.",
    input=PublishInput,
    output=_outputs("remoteUrl", "repoContentsUrl", "commitHash"),
    examples=[
        (
            "Publish the workspace to a new private repository",
            "steps:\n  - id: publish\n    name: Publish\n    action: publish:github\n"
            "    input:\n      repoUrl: github.com?owner=acme&repo=my-service\n"
            "      description: My new service\n      topics: [service, python]\n",
        ),
        (
            "A public repository with required checks and a team as admin",
            "steps:\n  - id: publish\n    name: Publish\n    action: publish:github\n"
            "    input:\n      repoUrl: github.com?owner=acme&repo=my-service\n"
            "      repoVisibility: public\n      access: acme/platform\n"
            "      requiredStatusCheckContexts: [ci/build]\n",
        ),
    ],
)
async def publish_github(ctx: ActionContext[PublishInput], integrations: Integrations) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    owner = repo.need_owner()
    async with _client(integrations, repo, inp.token, "publish:github") as client:

        async def create() -> dict[str, str]:
            made = await _create_repository(ctx, client, owner, repo.repo, inp, integrations.git)
            return {
                "remoteUrl": made["clone_url"],
                "repoContentsUrl": f"{made['html_url']}/blob/{inp.default_branch}",
            }

        created = await ctx.checkpoint(f"create.github.repo.{owner}.{repo.repo}", create)

        async def push() -> str:
            return await _push_and_protect(
                ctx, client, integrations, owner, repo.repo, created["remoteUrl"], inp
            )

        commit = await ctx.checkpoint("push", push)
    ctx.output("remoteUrl", created["remoteUrl"])
    ctx.output("repoContentsUrl", created["repoContentsUrl"])
    ctx.output("commitHash", commit)


# -- github:repo:create -------------------------------------------------------------
@action(
    settings=Integrations,
    id="github:repo:create",
    recorder=record_repo_create,
    description="Creates a GitHub repository (without pushing anything to it).",
    input=RepoCreateInput,
    output=_outputs("remoteUrl", "repoContentsUrl"),
    examples=[
        (
            "Create a repository",
            "steps:\n  - id: create\n    name: Create\n    action: github:repo:create\n"
            "    input:\n      repoUrl: github.com?owner=acme&repo=my-service\n",
        )
    ],
)
async def github_repo_create(
    ctx: ActionContext[RepoCreateInput], integrations: Integrations
) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    owner = repo.need_owner()
    async with _client(integrations, repo, inp.token, "github:repo:create") as client:

        async def create() -> str:
            made = await _create_repository(
                ctx,
                client,
                owner,
                repo.repo,
                inp,
                integrations.git,
                inp.auto_init,
                inp.workflow_access,
            )
            return str(made["clone_url"])

        remote = await ctx.checkpoint(f"create.repo.and.topics.{owner}.{repo.repo}", create)
    ctx.output("remoteUrl", remote)


# -- github:repo:push ---------------------------------------------------------------
@action(
    settings=Integrations,
    id="github:repo:push",
    recorder=record_repo_push,
    description="Initializes a git repository of the workspace's contents and pushes it "
    "to an existing GitHub repository, then protects its default branch.",
    input=RepoPushInput,
    output=_outputs("remoteUrl", "repoContentsUrl", "commitHash"),
    examples=[
        (
            "Push to a repository created by github:repo:create",
            "steps:\n  - id: push\n    name: Push\n    action: github:repo:push\n"
            "    input:\n      repoUrl: github.com?owner=acme&repo=my-service\n",
        )
    ],
)
async def github_repo_push(ctx: ActionContext[RepoPushInput], integrations: Integrations) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    owner = repo.need_owner()
    async with _client(integrations, repo, inp.token, "github:repo:push") as client:
        found = (await client.rest.repos.async_get(owner, repo.repo)).json()
        remote = str(found["clone_url"])

        async def push() -> str:
            return await _push_and_protect(ctx, client, integrations, owner, repo.repo, remote, inp)

        commit = await ctx.checkpoint(f"init.repo.publish.{owner}.{repo.repo}", push)
    ctx.output("remoteUrl", remote)
    ctx.output("repoContentsUrl", f"{found['html_url']}/blob/{inp.default_branch}")
    ctx.output("commitHash", commit)


# -- publish:github:pull-request ------------------------------------------------------
class PullRequestInput(ActionInput):
    repo_url: str = Field(description=REPO_URL)
    branch_name: str = Field(description="The name for the branch")
    files_to_delete: list[str] | None = Field(None, description="Files that will be deleted")
    target_branch_name: str | None = Field(
        None, description="The target branch of the pull request (default: the default branch)"
    )
    title: str = Field(description="The name for the pull request")
    description: str = Field(description="The description of the pull request")
    draft: bool | None = Field(None, description="Create a draft pull request")
    source_path: str | None = Field(
        None, description="Subdirectory of working directory to copy changes from"
    )
    target_path: str | None = Field(
        None, description="Subdirectory of repository to apply changes to"
    )
    token: str | None = Field(None, description=TOKEN)
    reviewers: list[str] | None = Field(None, description="Users asked to review")
    assignees: list[str] | None = Field(None, description="Users assigned (at most 10)")
    team_reviewers: list[str] | None = Field(None, description="Teams asked to review")
    commit_message: str | None = Field(None, description="The commit message (default: the title)")
    update: bool | None = Field(None, description="Update the pull request if it already exists")
    force_fork: bool | None = Field(None, description="Create the pull request from a fork")
    git_author_name: str | None = Field(None, description="Commit author name (Scaffolder)")
    git_author_email: str | None = Field(None, description="Commit author email")
    force_empty_git_author: bool | None = Field(
        None, description="Commit without an explicit author (the token's identity)"
    )
    create_when_empty: bool | None = Field(
        None,
        description="Create the pull request when there are no changes to commit (default true)",
    )

    @model_validator(mode="after")
    def _relative(self) -> PullRequestInput:
        for name, value in [
            ("targetPath", self.target_path),
            *[("filesToDelete entry", f) for f in self.files_to_delete or []],
        ]:
            if value and (value.startswith("/") or ".." in value.split("/")):
                raise ValueError(
                    f"Invalid {name} {value!r}: must be a relative path within the target "
                    "repository, without '..' segments"
                )
        return self


@action(
    settings=Integrations,
    id="publish:github:pull-request",
    recorder=record_pull_request,
    description="Creates a pull request on a GitHub repository with the workspace's "
    "contents laid over its target branch (or updates it with `update: true`).",
    input=PullRequestInput,
    dry_run=True,
    output={
        "type": "object",
        "properties": {
            "targetBranchName": {
                "type": "string",
                "description": "Target branch name of the merge request",
            },
            "remoteUrl": {"type": "string", "description": "Link to the pull request"},
            "pullRequestNumber": {"type": "number", "description": "The pull request number"},
        },
    },
    examples=[
        (
            "Open a pull request with the workspace's files",
            "steps:\n  - id: pr\n    name: Pull request\n"
            "    action: publish:github:pull-request\n"
            "    input:\n      repoUrl: github.com?owner=acme&repo=catalog\n"
            "      branchName: add-my-service\n      title: Add my-service\n"
            "      description: Registers my-service\n      targetPath: services\n",
        )
    ],
)
async def publish_github_pull_request(
    ctx: ActionContext[PullRequestInput], integrations: Integrations
) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    owner = repo.need_owner()
    if inp.force_fork:
        raise InputError("publish:github:pull-request: forceFork is not supported yet")
    source = await source_folder(ctx, inp.source_path)
    if ctx.is_dry_run:
        ctx.logger.info("Performing dry run of creating pull request")
        ctx.output("targetBranchName", inp.branch_name)
        ctx.output("remoteUrl", inp.repo_url)
        ctx.output("pullRequestNumber", 43)
        return
    async with _client(integrations, repo, inp.token, "publish:github:pull-request") as gh:
        rest = gh.rest

        async def create() -> dict[str, Any] | None:
            found = (await rest.repos.async_get(owner, repo.repo)).json()
            remote = str(found["clone_url"])
            if inp.force_empty_git_author:
                author = Author("Scaffolder", DEFAULT_AUTHOR_EMAIL)
            else:
                author = Author(
                    inp.git_author_name or "Scaffolder",
                    inp.git_author_email or DEFAULT_AUTHOR_EMAIL,
                )
            commit, base = await push_changes(
                ctx,
                source=source,
                remote=remote,
                base=inp.target_branch_name or str(found["default_branch"]),
                branch=inp.branch_name,
                target_path=inp.target_path,
                delete=list(inp.files_to_delete or []),
                message=inp.commit_message or inp.title,
                author=author,
                policy=integrations.git,
                token=gh.token,
                update=bool(inp.update),
            )
            if commit is None and inp.create_when_empty is False:
                return None
            head = f"{owner}:{inp.branch_name}"
            open_ = await rest.pulls.async_list(owner, repo.repo, head=head, state="open")
            existing = open_.json()
            key = await ctx.step_key()
            if existing and key.earlier and existing[0]["head"]["sha"] == commit:
                # its branch holds the commit an interrupted earlier run of this
                # step pushed (found by the step's key): that run opened it
                made = existing[0]
                ctx.logger.info(
                    f"Pull request #{made['number']} was opened by an earlier run of this "
                    "step: not opening another"
                )
                return {
                    "base": made["base"]["ref"],
                    "html_url": made["html_url"],
                    "number": made["number"],
                }
            if existing and inp.update:
                number = existing[0]["number"]
                pr = await rest.pulls.async_update(
                    owner,
                    repo.repo,
                    number,
                    data={"title": inp.title, "body": inp.description},
                )
                ctx.logger.info(f"Updated pull request #{number}")
            else:
                data = _compact(
                    {
                        "title": inp.title,
                        "head": inp.branch_name,
                        "base": base,
                        "body": inp.description,
                        "draft": inp.draft,
                    }
                )
                pr = await rest.pulls.async_create(owner, repo.repo, data=data)
            made = pr.json()
            ctx.logger.info(f"Pull request #{made['number']}: {made['html_url']}")
            return {
                "base": made["base"]["ref"],
                "html_url": made["html_url"],
                "number": made["number"],
            }

        key = f"create.pr.{owner}.{repo.repo}.{inp.branch_name}"
        pr = await ctx.checkpoint(key, create)
        if pr is None:
            ctx.logger.info("No changes to commit, pull request was not created")
            return
        number = int(pr["number"])
        if inp.reviewers or inp.team_reviewers:
            await _best_effort(
                ctx,
                f"adding reviewers to pull request {number}",
                lambda: rest.pulls.async_request_reviewers(
                    owner,
                    repo.repo,
                    number,
                    data=_compact(
                        {
                            "reviewers": inp.reviewers,
                            "team_reviewers": (
                                list(dict.fromkeys(inp.team_reviewers))
                                if inp.team_reviewers
                                else None
                            ),
                        }
                    ),
                ),
            )
        assignees = inp.assignees or []
        if assignees:
            if len(assignees) > 10:
                ctx.logger.warning("Assignees list is too long, only the first 10 will be used.")
            await _best_effort(
                ctx,
                f"adding assignees to pull request {number}",
                lambda: rest.issues.async_add_assignees(
                    owner, repo.repo, number, data={"assignees": assignees[:10]}
                ),
            )
    ctx.output("targetBranchName", pr["base"])
    ctx.output("remoteUrl", pr["html_url"])
    ctx.output("pullRequestNumber", number)


async def _best_effort(
    ctx: ActionContext[Any], what: str, call: Callable[[], Awaitable[Any]]
) -> None:
    try:
        await call()
    except (RequestFailed, GitHubException) as exc:
        ctx.logger.error(f"Failure when {what}: {_message(exc)}")


# -- github:actions:dispatch ---------------------------------------------------------
class DispatchInput(ActionInput):
    repo_url: str = Field(description=REPO_URL)
    workflow_id: str = Field(description="The GitHub Action Workflow filename")
    branch_or_tag_name: str = Field(
        description="The git branch or tag name used to dispatch the workflow"
    )
    workflow_inputs: dict[str, str] | None = Field(
        None, description="Inputs of the workflow (at most 25)."
    )
    return_workflow_run_details: bool | None = Field(
        None, description="Output the run's id and URLs."
    )
    token: str | None = Field(None, description=TOKEN)


@action(
    settings=Integrations,
    id="github:actions:dispatch",
    recorder=_record_call,
    description="Dispatches a GitHub Action workflow for a given branch or tag",
    input=DispatchInput,
    output={
        "type": "object",
        "properties": {
            "workflowRunId": {"type": "number", "description": "The run's id"},
            "workflowRunUrl": {"type": "string", "description": "API URL of the run"},
            "workflowRunHtmlUrl": {"type": "string", "description": "HTML URL of the run"},
        },
    },
    examples=[
        (
            "Dispatch a workflow on main",
            "steps:\n  - id: dispatch\n    name: Dispatch\n"
            "    action: github:actions:dispatch\n"
            "    input:\n      repoUrl: github.com?owner=acme&repo=my-service\n"
            "      workflowId: ci.yaml\n      branchOrTagName: main\n",
        )
    ],
)
async def github_actions_dispatch(
    ctx: ActionContext[DispatchInput], integrations: Integrations
) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    owner = repo.need_owner()
    ctx.logger.info(
        f"Dispatching workflow {inp.workflow_id} for repo {inp.repo_url} on "
        f"{inp.branch_or_tag_name}"
    )
    async with _client(integrations, repo, inp.token, "github:actions:dispatch") as gh:

        async def dispatch() -> dict[str, Any] | None:
            data: dict[str, Any] = {"ref": inp.branch_or_tag_name}
            if inp.workflow_inputs is not None:
                data["inputs"] = inp.workflow_inputs
            if inp.return_workflow_run_details:
                data["return_run_details"] = True
            answer = await gh.rest.actions.async_create_workflow_dispatch(
                owner, repo.repo, inp.workflow_id, data=data
            )
            ctx.logger.info(f"Workflow {inp.workflow_id} dispatched successfully")
            if inp.return_workflow_run_details and answer.status_code == 200:
                run = answer.json()
                return {
                    "workflowRunId": run.get("workflow_run_id"),
                    "workflowRunUrl": run.get("run_url"),
                    "workflowRunHtmlUrl": run.get("html_url"),
                }
            return None

        key = f"create.workflow.dispatch.{owner}.{repo.repo}.{inp.workflow_id}"
        details = await ctx.checkpoint(key, dispatch)
    for name, value in (details or {}).items():
        if value is not None:
            ctx.output(name, value)


# -- github:webhook -----------------------------------------------------------------
class WebhookInput(ActionInput):
    repo_url: str = Field(description=REPO_URL)
    webhook_url: str = Field(description="Target URL to deliver the events to")
    webhook_secret: str | None = Field(None, description="Secret key GitHub signs deliveries with")
    events: list[str] = Field(
        default_factory=lambda: ["push"], description="Events that trigger the webhook (`*`: all)"
    )
    active: bool = Field(True, description="Whether deliveries are sent")
    content_type: Literal["form", "json"] = Field("form", description="Payload media type")
    insecure_ssl: bool = Field(False, description="Skip TLS certificate checks on delivery")
    token: str | None = Field(None, description=TOKEN)


@action(
    settings=Integrations,
    id="github:webhook",
    recorder=_record_call,
    description="Creates a webhook for a repository on GitHub",
    input=WebhookInput,
    dry_run=True,
    examples=[
        (
            "Deliver push events as JSON",
            "steps:\n  - id: webhook\n    name: Webhook\n    action: github:webhook\n"
            "    input:\n      repoUrl: github.com?owner=acme&repo=my-service\n"
            "      webhookUrl: https://ci.example.com/hook\n      contentType: json\n"
            "      webhookSecret: ${{ secrets.HOOK_SECRET }}\n",
        )
    ],
)
async def github_webhook(ctx: ActionContext[WebhookInput], integrations: Integrations) -> None:
    inp = ctx.input
    ctx.logger.info(f"Creating webhook {inp.webhook_url} for repo {inp.repo_url}")
    repo = RepoUrl.parse(inp.repo_url)
    owner = repo.need_owner()
    async with _client(integrations, repo, inp.token, "github:webhook") as gh:
        if ctx.is_dry_run:
            ctx.logger.info("Dry run complete")
            return
        config = _compact(
            {
                "url": inp.webhook_url,
                "content_type": inp.content_type,
                "secret": inp.webhook_secret,
                "insecure_ssl": "1" if inp.insecure_ssl else "0",
            }
        )

        async def create() -> None:
            await gh.rest.repos.async_create_webhook(
                owner,
                repo.repo,
                data={"config": config, "events": inp.events, "active": inp.active},
            )

        try:
            await ctx.checkpoint(f"create.webhook.{owner}.{repo.repo}.{inp.webhook_url}", create)
            ctx.logger.info(f"Webhook '{inp.webhook_url}' created successfully")
        except RequestFailed as exc:
            if exc.response.status_code == 422 and (await ctx.step_key()).earlier:
                # GitHub keeps one hook per URL: an interrupted earlier run made it
                ctx.logger.info(
                    f"Webhook '{inp.webhook_url}' was created by an earlier run of this step"
                )
                return
            ctx.logger.warning(
                f"Failed: create webhook '{inp.webhook_url}' on repo: '{repo.repo}', "
                f"{_failure(exc)}"
            )


# -- github:issues:label ----------------------------------------------------------
class LabelInput(ActionInput):
    repo_url: str = Field(description=REPO_URL)
    number: int = Field(description="The number of the issue or pull request")
    labels: list[str] = Field(description="The labels to add")
    token: str | None = Field(None, description=TOKEN)


@action(
    settings=Integrations,
    id="github:issues:label",
    recorder=_record_call,
    description="Adds labels to a pull request or issue on GitHub.",
    input=LabelInput,
    examples=[
        (
            "Label pull request 1 (a number from an earlier step works too: "
            "`${{ steps.pr.output.pullRequestNumber }}`)",
            "steps:\n  - id: label\n    name: Label\n    action: github:issues:label\n"
            "    input:\n      repoUrl: github.com?owner=acme&repo=catalog\n"
            "      number: 1\n      labels: [scaffolder]\n",
        )
    ],
)
async def github_issues_label(ctx: ActionContext[LabelInput], integrations: Integrations) -> None:
    inp = ctx.input
    repo = RepoUrl.parse(inp.repo_url)
    owner = repo.need_owner()
    ctx.logger.info(f"Adding labels to {inp.number} issue on repo {repo.repo}")
    async with _client(integrations, repo, inp.token, "github:issues:label") as gh:

        async def label() -> None:
            await gh.rest.issues.async_add_labels(
                owner, repo.repo, inp.number, data={"labels": inp.labels}
            )

        try:
            await ctx.checkpoint(f"github.issues.add.label.{owner}.{repo.repo}.{inp.number}", label)
        except RequestFailed as exc:
            ctx.logger.warning(
                f"Failed: adding labels to issue: '{inp.number}' on repo: '{repo.repo}', "
                f"{_failure(exc)}"
            )


GITHUB_ACTIONS: tuple[Action[Any], ...] = (
    publish_github,
    publish_github_pull_request,
    github_repo_create,
    github_repo_push,
    github_actions_dispatch,
    github_webhook,
    github_issues_label,
)


# -- the forge protocol (forge.py) ---------------------------------------------------
class GithubForge:
    """A repository on GitHub for the shared flows of forge.py."""

    kind: Kind = "github"

    def __init__(self, client: _Client, owner: str, name: str) -> None:
        self.rest = client.rest
        self.owner = owner
        self.name = name
        self.git = GitAuth(client.token, "x-access-token")

    async def repository(self) -> Repository:
        found = (await self.rest.repos.async_get(self.owner, self.name)).json()
        return Repository(
            str(found["clone_url"]), str(found["default_branch"]), str(found["html_url"])
        )

    def compare_url(self, repository: Repository, base: str, branch: str) -> str:
        return f"{repository.web_url}/compare/{base}...{branch}"

    async def find_open_change_request(self, branch: str, base: str) -> ChangeRequest | None:
        head = f"{self.owner}:{branch}"
        found = (
            await self.rest.pulls.async_list(
                self.owner, self.name, head=head, base=base, state="open"
            )
        ).json()
        return ChangeRequest(found[0]["number"], found[0]["html_url"]) if found else None

    async def open_change_request(self, proposal: Proposal) -> ChangeRequest:
        data = {
            "title": proposal.title,
            "head": proposal.branch,
            "base": proposal.base,
            "body": proposal.description,
            "draft": proposal.draft,
        }
        made = (await self.rest.pulls.async_create(self.owner, self.name, data=data)).json()
        return ChangeRequest(made["number"], made["html_url"])


@asynccontextmanager
async def github_forge(
    integrations: Integrations, repo: RepoUrl, token: str | None, what: str
) -> AsyncIterator[Forge]:
    owner = repo.need_owner()
    async with _client(integrations, repo, token, what) as client:
        yield GithubForge(client, owner, repo.repo)
