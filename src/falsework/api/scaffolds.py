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

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from falsework.api import audit, auth
from falsework.api.deps import Caller, Svc
from falsework.api.models import errors
from falsework.engine import NewTask
from falsework.errors import ConflictError, InputError
from falsework.types import JSONObject

router = APIRouter(tags=["scaffolds"])

UPDATE_REF = "template:falsework/scaffold-update"
MARK = "falseworkUpdate"  # the spec key naming the repository an update task is for


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

    repositories: list[UpdateTarget] = Field(min_length=1, max_length=5000)
    to: str | None = Field(None, description="The version (default: each one's newest tag).")
    values: dict[str, Any] = Field(
        default_factory=dict, description="Answers to change or add, for every repository."
    )
    secrets: dict[str, str] | None = Field(
        None, description="`token`: the credential to push with (else the server's)."
    )


class StartedUpdate(BaseModel):
    id: str
    repository: str
    runAfter: str | None = None


class StartedUpdates(BaseModel):
    tasks: list[StartedUpdate]


def update_spec(target: UpdateTarget, body: StartUpdates, user: JSONObject) -> JSONObject:
    step_input: JSONObject = {
        key: value
        for key, value in {
            "remoteUrl": target.remoteUrl,
            "repoUrl": target.repoUrl,
            "branch": target.branch,
            "to": body.to,
        }.items()
        if value
    }
    if body.values:
        step_input["values"] = body.values
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
        "parameters": {},
        "user": user,
        "templateInfo": {"entityRef": UPDATE_REF},
        MARK: target.key,
    }


@router.post(
    "/v1/scaffolds/updates",
    status_code=201,
    response_model=StartedUpdates,
    summary="Start template updates of repositories (one task each)",
    responses=errors(401, 403, 409, 422, 429, 503),
)
async def start_updates(body: StartUpdates, svc: Svc, caller: Caller) -> JSONObject:
    auth.check_role(caller, auth.AUTHOR, "start template updates")
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
    spacing = svc.settings.update_host_interval
    now = datetime.now(UTC)
    per_host: dict[str, int] = {}
    started: list[JSONObject] = []
    for target in body.repositories:
        index = per_host.get(target.host, 0)
        per_host[target.host] = index + 1
        run_after = now + timedelta(seconds=spacing * index) if spacing and index else None
        created = await svc.broker.submit(
            NewTask(
                update_spec(target, body, caller.user_context()),
                created_by=caller.ref,
                secrets=body.secrets or None,
                run_after=run_after,
            )
        )
        svc.metrics.tasks_created.inc()
        await svc.audit.record(
            caller.ref, audit.TASK_CREATE, created, template=UPDATE_REF, repository=target.key
        )
        item: JSONObject = {"id": created, "repository": target.key}
        if run_after is not None:
            item["runAfter"] = run_after.isoformat()
        started.append(item)
    return {"tasks": started}
