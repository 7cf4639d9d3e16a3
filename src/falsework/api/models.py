"""The wire shapes of the API (Backstage's field names), for validation and OpenAPI."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


# errors --------------------------------------------------------------------
class ErrorDetail(_Wire):
    name: str
    message: str


class ErrorRequest(_Wire):
    method: str
    url: str


class ErrorResponseStatus(_Wire):
    statusCode: int


class ErrorBody(_Wire):
    """Backstage's error body."""

    error: ErrorDetail
    request: ErrorRequest
    response: ErrorResponseStatus


class ValidationErrors(_Wire):
    """400 for template values that fail the template's JSON Schema."""

    errors: list[dict[str, Any]]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the error codes a route can answer."""
    described = {
        400: "Invalid input",
        401: "Missing or unknown bearer token",
        403: "Not allowed for this identity",
        404: "Not found",
        409: "Conflicts with the task's state",
        413: "Request body over 10 MB",
        422: "Malformed request (or JSON nested deeper than the server's limit)",
        429: "A per-user limit was reached (the message names it; `Retry-After` when known)",
        503: "The database cannot be reached",
    }
    return {code: {"model": ErrorBody, "description": described[code]} for code in codes}


# tasks ---------------------------------------------------------------------
class CreateTask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    templateRef: str = Field(min_length=1, description="e.g. template:default/my-template")
    values: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] | None = Field(
        default=None, description="Stored encrypted, given to actions, never returned."
    )


class TaskId(_Wire):
    id: str


class TaskModel(_Wire):
    id: str
    spec: dict[str, Any]
    status: Literal["open", "processing", "completed", "failed", "cancelled"]
    createdAt: str
    lastHeartbeatAt: str | None = None
    createdBy: str | None = None
    completedAt: str | None = None


class TaskList(_Wire):
    tasks: list[TaskModel]
    totalTasks: int


class CancelResult(_Wire):
    status: Literal["cancelled"]


class EventModel(_Wire):
    id: int
    isTaskRecoverable: bool = False
    taskId: str
    body: dict[str, Any]
    type: str
    createdAt: str


# templates -----------------------------------------------------------------
class ParameterStep(_Wire):
    title: str | None = None
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class ParameterSchema(_Wire):
    title: str | None = None
    description: str | None = None
    steps: list[ParameterStep]
    secretsSchema: dict[str, Any] | None = Field(
        default=None, description="spec.secrets.schema of the template, when it has one."
    )


class TemplateProblem(_Wire):
    """One problem ``falsework templates validate`` reports."""

    file: str = Field(description="The file, relative to the template's folder.")
    line: int | None = None
    path: str = Field(description="The YAML path, e.g. spec.steps[2].action; empty: the file")
    message: str


class TemplateSummary(_Wire):
    ref: str
    name: str
    namespace: str
    title: str | None = None
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    owner: str | None = None
    type: str | None = None
    broken: bool | None = Field(
        default=None,
        description="Present (true) on a template `falsework templates validate` rejects; "
        "only template authors and admins are shown such a template.",
    )
    problems: list[TemplateProblem] | None = Field(
        default=None, description="What is wrong with a broken template."
    )


class Me(_Wire):
    user: str | None
    groups: list[str] = Field(default_factory=list)
    admin: bool
    roles: list[str] = Field(
        default_factory=list, description="Roles the caller holds (an admin holds all)."
    )
    localMode: bool
    authRequired: bool


# actions -------------------------------------------------------------------
class ActionExample(_Wire):
    description: str
    example: str


class ActionSchema(_Wire):
    input: dict[str, Any]
    output: dict[str, Any] | None = None


class ActionModel(_Wire):
    id: str
    description: str | None = None
    examples: list[ActionExample] = Field(default_factory=list)
    schema_: ActionSchema = Field(alias="schema")
    supportsDryRun: bool = False

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


# dry run -------------------------------------------------------------------
class FileContent(BaseModel):
    path: str = Field(min_length=1)
    base64Content: str
    executable: bool = False

    @field_validator("base64Content")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError("not valid base64") from None
        return value


class RehearsalRequest(BaseModel):
    """A rehearsal's settings: what the template sees and the answers http:request gets."""

    seed: str = Field(
        default="falsework",
        max_length=200,
        description="The task id (`context.task.id`) is derived from it.",
    )
    user: dict[str, Any] | None = Field(
        default=None,
        description="What the template sees as `user` ({ref, entity}); by default a fixed "
        "test user. Only what the template renders: who may run it is the caller.",
    )
    http: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=1000,
        description="Canned answers: {request: {method, url, body?}, response | responses: "
        "{status, headers, body}}. A request none answers fails its step.",
    )


class DryRunRequest(BaseModel):
    """Backstage's dry-run request (``template`` + ``directoryContents``, which needs
    the ``templates:author`` role), or Falsework's ``templateRef``: dry-run a catalog
    template the caller may run, with its own files."""

    templateRef: str | None = Field(
        default=None,
        min_length=1,
        description="A catalog template to dry-run (e.g. template:default/my-template); "
        "needs only the right to run it. Leave out `template` and `directoryContents`.",
    )
    template: dict[str, Any] | None = Field(
        default=None,
        description="A template document (kind: Template) to dry-run with the files of "
        "`directoryContents`; needs the templates:author role.",
    )
    values: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] | None = None
    directoryContents: list[FileContent] = Field(default_factory=list)
    rehearsal: RehearsalRequest | None = Field(
        default=None,
        description="Make the dry run a rehearsal (what `falsework templates test` runs): "
        "deterministic, side-effecting steps recorded in the result's `recorded`, "
        "http:request answered from `http` only.",
    )


class DryRunResult(_Wire):
    log: list[dict[str, Any]]
    directoryContents: list[FileContent]
    output: dict[str, Any]
    steps: list[dict[str, Any]]
    error: ErrorDetail | None = Field(
        default=None, description="Why the run failed, when a step failed."
    )
    recorded: list[dict[str, Any]] | None = Field(
        default=None,
        description="In a rehearsal: each side-effecting step's call (step, action, input, "
        "and the files a push would push).",
    )


class DryRunFailure(_Wire):
    """A dry run whose step failed: Backstage's error body (its status 404, 400 or
    500, as Backstage answers), plus what a successful dry run returns, so far."""

    error: ErrorDetail
    request: ErrorRequest
    response: ErrorResponseStatus
    log: list[dict[str, Any]]
    directoryContents: list[FileContent]
    output: dict[str, Any]
    steps: list[dict[str, Any]]


# workers -------------------------------------------------------------------
class WorkerModel(_Wire):
    id: str
    host: str
    pid: int
    limit: int
    running: int
    startedAt: str | None = None
    heartbeatAt: str | None = None


class WorkerLimit(BaseModel):
    limit: int = Field(ge=0, le=10_000)


# audit ---------------------------------------------------------------------
class AuditModel(_Wire):
    id: int
    at: str
    actor: str
    action: str
    target: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditPage(_Wire):
    entries: list[AuditModel]
    next: int | None = Field(
        default=None, description="More entries may follow: ask again with before=<next>"
    )


# admin ---------------------------------------------------------------------
class QueueModel(_Wire):
    open: int
    claimable: int = Field(description="Open tasks whose run_after has passed")
    processing: int
    stale: int = Field(description="Processing tasks without a heartbeat for the stale timeout")
    oldestOpenAgeSeconds: float | None = None


class FlagModel(_Wire):
    name: str
    detail: dict[str, Any] = Field(default_factory=dict)
    setBy: str | None = None
    setAt: str | None = None


class AdminWorkerModel(WorkerModel):
    heartbeatAgeSeconds: float


class TroubledModel(_Wire):
    id: str
    status: str
    createdBy: str | None = None
    attempt: int
    claimedBy: str | None = None
    createdAt: str | None = None
    heartbeatAgeSeconds: float | None = None
    recoveredAt: str | None = Field(default=None, description="None: retried by hand")
    template: str | None = None


class WebhookModel(_Wire):
    name: str
    events: list[str]
    templates: list[str] | None = None


class AdminOverview(_Wire):
    queue: QueueModel
    paused: FlagModel | None = Field(default=None, description="Set: no worker claims")
    workers: list[AdminWorkerModel]
    troubled: list[TroubledModel] = Field(description="Stale tasks, and tasks running again")
    staleAfterSeconds: float
    webhooks: list[WebhookModel]


class PauseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


class PauseState(_Wire):
    paused: FlagModel | None = None


class BulkFilter(BaseModel):
    """Which tasks a bulk cancel or retry takes: every field given must match."""

    model_config = ConfigDict(extra="forbid")

    status: list[Literal["open", "processing", "completed", "failed", "cancelled"]] | None = Field(
        default=None, description="Default: open+processing (cancel), failed+cancelled (retry)"
    )
    createdBy: str | None = Field(default=None, max_length=300)
    template: str | None = Field(
        default=None, max_length=300, description="A template's entity ref, e.g. template:default/x"
    )
    createdBefore: datetime | None = Field(default=None, description="ISO 8601 with a time zone")
    limit: int = Field(default=100, ge=1, le=1000, description="At most this many tasks")
    dryRun: bool = Field(default=False, description="Only count and list what would be done")


class BulkFailure(_Wire):
    id: str
    message: str


class BulkResult(_Wire):
    matched: list[str]
    done: list[str]
    failed: list[BulkFailure]
    dryRun: bool


# health --------------------------------------------------------------------
class Health(_Wire):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
