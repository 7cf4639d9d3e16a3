"""Routes of the noun *scaffold*: a repository made with scaffold recording, and
the updates that bring it to a newer version of its template (docs/updates.md).

``POST /api/falsework/v1/scaffolds/updates`` starts an update of one or many
repositories: one task per repository, each a single ``scaffold:update`` step,
so an update is as durable as any task (claimed by any worker, recovered after
a crash, its push and pull request checkpointed). Updates of repositories on
the same host are spaced ``FALSEWORK_UPDATE_HOST_INTERVAL`` seconds apart (the
tasks' ``run_after``), so a fleet update does not hammer one forge. An update
is refused (409) while an earlier update of the same repository and branch is
unfinished. Starting updates needs the templates:author role: an update pushes
with the server's credentials to the repositories it is given.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from falsework.actions.policies import UpdatePolicy
from falsework.api import audit, auth
from falsework.api.deps import Caller, Services, Svc
from falsework.api.models import ErrorBody, errors
from falsework.engine import NewTask
from falsework.engine.models import ScaffoldRecord
from falsework.errors import ConflictError, FalseworkError, InputError
from falsework.types import JSONObject
from falsework.updates import answers
from falsework.updates.fleet import UPDATE_MARK
from falsework.updates.render import TemplateVersion, latest_version, template_remote
from falsework.updates.state import ScaffoldState, StateError

router = APIRouter(tags=["scaffolds"])

UPDATE_REF = "template:falsework/scaffold-update"
MARK = UPDATE_MARK  # the spec key naming the repository an update task is for


class UpdateTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    remoteUrl: str | None = Field(None, description="The repository as a git remote.")
    repoUrl: str | None = Field(
        None, description="The repository on a configured GitHub: host?owner=O&repo=R."
    )
    branch: str | None = Field(None, description="The branch to update (default main).")

    @model_validator(mode="after")
    def _one(self) -> UpdateTarget:
        if bool(self.remoteUrl) == bool(self.repoUrl):
            raise ValueError("give exactly one of remoteUrl and repoUrl")
        return self

    @property
    def key(self) -> str:
        return f"{self.remoteUrl or self.repoUrl}#{self.branch or ''}"

    @property
    def host(self) -> str:
        if self.repoUrl:
            return self.repoUrl.split("?", 1)[0].lower()
        url = self.remoteUrl or ""
        return (urlsplit(url).hostname or "") if "://" in url else url.split(":", 1)[0]


class StartUpdates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repositories: list[UpdateTarget] = Field(default_factory=list, max_length=5000)
    template: str | None = Field(
        None, description="Every repository this server recorded for this template ref."
    )
    to: str | None = Field(None, description="The version (default: each one's newest tag).")
    values: dict[str, Any] = Field(
        default_factory=dict, description="Answers to change or add, for every repository."
    )
    secrets: dict[str, str] | None = Field(
        None, description="`token`: the credential to push with (else the server's)."
    )


class NeededAnswers(BaseModel):
    repository: str
    templateRef: str
    version: str = Field(description="The version the update goes to.")
    parameters: list[dict[str, Any]] = Field(
        description="Each parameter to answer: `{name, title, schema}`."
    )
    answers: dict[str, Any] = Field(description="The answers kept (never secrets).")
    errors: list[dict[str, Any]] = Field(description="The stored answers' validation errors.")


class AnswersNeeded(ErrorBody):
    """422 when the version needs answers (give them in `values`)."""

    needed: list[NeededAnswers] = Field(default_factory=list)


class StartedUpdate(BaseModel):
    id: str
    repository: str
    runAfter: str | None = None


class StartedUpdates(BaseModel):
    tasks: list[StartedUpdate]


def _target(repository: str) -> UpdateTarget:
    """The update target of a recorded repository (``remote#branch``)."""
    remote, _, branch = repository.rpartition("#")
    return UpdateTarget(remoteUrl=remote, branch=branch or None)


class ScaffoldModel(BaseModel):
    repository: str = Field(description="The remote and branch: `remote#branch`.")
    templateRef: str
    version: str = Field(description="The version its branch had when last seen.")
    latest: str | None = Field(None, description="The template's newest version tag.")
    updateAvailable: bool | None = None
    update: dict[str, Any] | None = Field(
        None, description="The last update task's branch, version, conflicts, pull request."
    )
    taskId: str | None = None
    updatedAt: str | None = None


class ScaffoldList(BaseModel):
    scaffolds: list[ScaffoldModel]
    problems: dict[str, str] = Field(
        default_factory=dict, description="Template repositories whose versions could not be read."
    )


@router.get(
    "/v1/scaffolds",
    response_model=ScaffoldList,
    summary="Repositories made with scaffold recording, and whether an update is available",
    responses=errors(401, 503),
)
async def list_scaffolds(
    svc: Svc,
    caller: Caller,
    template: Annotated[str | None, Query(description="A template ref.")] = None,
    outdated: Annotated[bool, Query(description="Only those behind the newest version.")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONObject:
    """Authors see every repository; anyone else those whose tasks they created."""
    rows = await svc.broker.scaffold_list(template, limit=limit, offset=offset)
    if not caller.has(auth.AUTHOR):
        rows = [r for r in rows if r.created_by == caller.ref]
    policy = next(p for p in svc.settings.action_policies() if isinstance(p, UpdatePolicy))
    latest: dict[str, TemplateVersion | None] = {}
    problems: dict[str, str] = {}
    for row in rows:
        state = row.record.get("state") or {}
        repository = str((state.get("template") or {}).get("repository") or "")
        if repository and repository not in latest and repository not in problems:
            try:
                remote = await template_remote(
                    policy.publish.git, repository, policy.template_roots
                )
                latest[repository] = await latest_version(policy.publish.git, remote)
            except FalseworkError as exc:
                problems[repository] = exc.message
    found: list[JSONObject] = []
    for row in rows:
        state = row.record.get("state") or {}
        source = state.get("template") or {}
        newest = latest.get(str(source.get("repository") or ""))
        behind = None if newest is None else newest.commit != source.get("commit")
        if outdated and not behind:
            continue
        item = row.to_json()
        found.append(
            {
                "repository": row.repository,
                "templateRef": row.template_ref,
                "version": row.version,
                "latest": newest.name if newest is not None else None,
                "updateAvailable": behind,
                "update": row.record.get("update"),
                "taskId": row.task_id,
                "updatedAt": item["updatedAt"],
            }
        )
    return {"scaffolds": found, "problems": problems}


def update_spec(target: UpdateTarget, body: StartUpdates, user: JSONObject) -> JSONObject:
    """The task of one repository's update. What the caller sent is the task's
    parameters, which the step's input names: a step input is rendered, so a
    value holding ``${{ … }}`` taken into it would be evaluated (a secret, for
    one, written into the repository's answers); a parameter is data."""
    given = {
        "remoteUrl": target.remoteUrl,
        "repoUrl": target.repoUrl,
        "branch": target.branch,
        "to": body.to,
        "values": body.values,
    }
    parameters: JSONObject = {key: value for key, value in given.items() if value}
    step_input: JSONObject = {key: f"${{{{ parameters.{key} }}}}" for key in parameters}
    if body.secrets and "token" in body.secrets:
        step_input["token"] = "${{ secrets.token }}"
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "steps": [
            {
                "id": "update",
                "name": "Update from the template",
                "action": "scaffold:update",
                "input": step_input,
            }
        ],
        "output": {"update": "${{ steps.update.output }}"},
        "parameters": parameters,
        "user": user,
        "templateInfo": {"entityRef": UPDATE_REF},
        MARK: target.key,
    }


async def _check_answers(
    svc: Services, body: StartUpdates, known: dict[str, ScaffoldRecord]
) -> None:
    """Refuse (422) an update whose version needs answers a recorded repository's
    stored ones lack, listing them per repository: the form asks for them and
    starts again with them in ``values``. A repository this server has no row
    of (or whose template cannot be read now) is checked by its task."""
    states: dict[str, ScaffoldState] = {}
    for target in body.repositories:
        if target.remoteUrl is None:
            continue
        repository = f"{target.remoteUrl}#{target.branch or 'main'}"
        row = known.get(repository) or await svc.broker.scaffold_get(repository)
        try:
            if row is not None and row.record.get("state"):
                states[target.key] = ScaffoldState.from_json(row.record["state"])
        except StateError:
            continue
    if not states:
        return
    policy = next(p for p in svc.settings.action_policies() if isinstance(p, UpdatePolicy))
    needed = await answers.check(
        states, body.to, body.values, policy.publish.git, policy.template_roots
    )
    if needed:
        names = sorted({p["name"] for n in needed for p in n.parameters})
        raise answers.AnswersNeededError(
            f"the version to update to needs answers that {len(needed)} repositor"
            f"{'y does' if len(needed) == 1 else 'ies do'} not have: {', '.join(names)}; "
            "give them in values",
            needed,
        )


@router.post(
    "/v1/scaffolds/updates",
    status_code=201,
    response_model=StartedUpdates,
    summary="Start template updates of repositories (one task each)",
    responses={
        **errors(401, 403, 409, 429, 503),
        422: {
            "model": AnswersNeeded,
            "description": "Malformed request, or answers the version needs that a "
            "recorded repository lacks (`needed`: each one's parameters and kept answers)",
        },
    },
)
async def start_updates(body: StartUpdates, svc: Svc, caller: Caller) -> JSONObject:
    auth.check_role(caller, auth.AUTHOR, "start template updates")
    known: dict[str, ScaffoldRecord] = {}
    if body.template:
        recorded = await svc.broker.scaffold_list(body.template, limit=100_000)
        known = {row.repository: row for row in recorded}
        body.repositories.extend(_target(row.repository) for row in recorded)
    if not body.repositories:
        raise InputError(
            "repositories: none given"
            + (f", and none recorded for {body.template}" if body.template else "")
        )
    keys = [t.key for t in body.repositories]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise InputError(f"repositories: listed more than once: {', '.join(twice)}")
    unfinished, _ = await svc.broker.list(status=("open", "processing"), limit=100_000)
    busy = {str(t.spec.get(MARK)): t.id for t in unfinished if t.spec.get(MARK)}
    clashes = [f"{k} (task {busy[k]})" for k in keys if k in busy]
    if clashes:
        raise ConflictError(
            "an earlier update of these repositories is unfinished; wait for it or cancel "
            f"it: {', '.join(clashes)}"
        )
    await _check_answers(svc, body, known)
    spacing = svc.settings.update_host_interval
    now = datetime.now(UTC)
    per_host: dict[str, int] = {}
    items: list[NewTask] = []
    for target in body.repositories:
        index = per_host.get(target.host, 0)
        per_host[target.host] = index + 1
        run_after = now + timedelta(seconds=spacing * index) if spacing and index else None
        spec = update_spec(target, body, caller.user_context())
        items.append(
            NewTask(spec, created_by=caller.ref, secrets=body.secrets or None, run_after=run_after)
        )
    # one group commit for the whole fleet
    created = await svc.broker.create_many(items)
    svc.metrics.tasks_created.inc(len(created))
    await asyncio.gather(
        *(
            svc.audit.record(
                caller.ref, audit.TASK_CREATE, task_id, template=UPDATE_REF, repository=t.key
            )
            for task_id, t in zip(created, body.repositories, strict=True)
        )
    )
    started: list[JSONObject] = []
    for task_id, target, item in zip(created, body.repositories, items, strict=True):
        entry: JSONObject = {"id": task_id, "repository": target.key}
        if item.run_after is not None:
            entry["runAfter"] = item.run_after.isoformat()
        started.append(entry)
    return {"tasks": started}
