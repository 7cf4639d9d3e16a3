"""The scalar settings, declared once: each one's name, type, default, bounds and
description. Both readers take them from here: ``falsework.config.Settings`` (the
pydantic-settings model ``falsework serve`` and the other commands build) makes
its fields of them, and ``falsework.localconfig`` (``falsework run``'s start,
without pydantic) reads the ``FALSEWORK_*`` variables by them.

``Scalars`` declares them as a class, so the type checker knows each one's type on
either reader; at run time its attributes are ``Scalar`` records, gathered with
the type of each in ``SCALARS``. The sections (``auth``, ``integrations``,
``webhooks``...), the lists and the config file's own field stay in ``Settings``.
``options_of`` makes the engine's and the runner's option objects of either reader
by the same names (``falsework.wiring``), so a setting is declared here only.
This module imports no pydantic and nothing of falsework.
"""

# no `from __future__ import annotations`: SCALARS reads the annotations as types

import types
import typing
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DEFAULT_DATA_DIR = Path(".falsework")
DAY = 86_400.0

Kind = Literal["str", "path", "bool", "int", "float", "choice"]


@dataclass(frozen=True)
class Scalar:
    """A scalar setting: its default, description and bounds, and (from its
    annotation in ``Scalars``) its kind, whether it may be None, and for a
    ``Literal`` its choices."""

    default: object
    description: str | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    kind: Kind = "str"
    optional: bool = False  # `T | None`: the default is None
    choices: tuple[str, ...] = ()


def setting(
    default: object,
    description: str | None = None,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> Any:  # Any: `name: int = setting(...)` declares an int to the type checker
    return Scalar(default, description, ge, gt, le)


class Scalars:
    """Every scalar setting of Falsework, with its default (docs/operations.md
    lists them; ``FALSEWORK_<NAME>`` sets one)."""

    # where things live
    database_url: str = setting(
        "",
        "sqlite:///path or postgresql://user:password@host/db (asyncpg); empty means "
        "SQLite at DATA_DIR/falsework.db.",
    )
    data_dir: Path = setting(DEFAULT_DATA_DIR, "Local state (SQLite, key).")
    work_dir: Path = setting(Path(""), "Task workspaces; default DATA_DIR/work.")
    templates: str = setting(
        "",
        "Template folders separated by ':'; default ./templates plus the examples.",
    )
    publish_roots: str = setting(
        "",
        "Folders separated by ':' where publish:git may create or push to repositories on"
        " this machine, besides DATA_DIR/remotes.",
    )

    # outbound connections of actions
    git_timeout: float = setting(
        120.0,
        "Seconds one git command may run before it is killed.",
        gt=0,
    )
    git_allow_http: bool = setting(
        False,
        "Allow git over plain http:// (https and ssh always are).",
    )
    update_parallel: int = setting(
        2,
        "Template updates one process computes at once; the other update tasks it runs "
        "wait for their turn (a coroutine each, no CPU).",
        ge=1,
        le=64,
    )
    update_host_interval: float = setting(
        1.0,
        "Seconds between the starts of template updates of repositories on one host, when"
        " many are started at once (POST /api/falsework/v1/scaffolds/updates).",
        ge=0,
    )

    # the worker
    concurrency: int = setting(100, ge=0, le=10_000)
    heartbeat_interval: float = setting(2.0, gt=0)
    stale_timeout: float = setting(15.0, gt=0)
    lease: float | None = setting(
        None,
        "Self-fencing: seconds a worker trusts a heartbeat (default 2/3 of the stale timeout).",
        gt=0,
    )
    lease_margin: float | None = setting(
        None,
        "Safety margin on both sides of the lease (default 2/15 of the stale timeout).",
        gt=0,
    )
    db_statement_timeout: float | None = setting(
        None,
        "Postgres statement_timeout and idle_in_transaction_session_timeout (default a "
        "third of the stale timeout).",
        gt=0,
    )
    db_connect_timeout: float = setting(5.0, gt=0)
    db_keepalive: int = setting(2, "TCP keepalive idle seconds on Postgres connections.", ge=1)
    poll_interval: float = setting(1.0, "Idle poll when empty.", gt=0)
    max_poll_interval: float = setting(5.0, "Poll when full.", gt=0)
    max_claim_delay: float = setting(0.05, "Delay of a full node's claim after a notify.", ge=0)
    janitor_interval: float = setting(2.0, gt=0)
    shutdown_grace: float = setting(30.0, ge=0)
    max_running_per_user: int | None = setting(None, ge=1)
    max_rss_mb: int | None = setting(None, ge=1)
    secret_key: str | None = setting(None, "Fernet key; generated if unset.")
    secret_retention: float = setting(DAY, ge=0)

    # retention (docs/operations.md, "Retention"): seconds; 0 keeps forever
    retention_completed: float = setting(
        30 * DAY,
        "Keep completed tasks and their events (30 d).",
        ge=0,
    )
    retention_failed: float = setting(90 * DAY, "Keep failed tasks and their events (90 d).", ge=0)
    retention_cancelled: float = setting(
        7 * DAY,
        "Keep cancelled tasks and their events (7 d).",
        ge=0,
    )
    retention_audit: float = setting(365 * DAY, "Keep audit_events rows (365 d).", ge=0)
    retention_interval: float = setting(
        60.0,
        "Seconds between retention passes (one node each).",
        gt=0,
    )
    retention_batch: int = setting(
        500,
        "Tasks deleted per retention transaction.",
        ge=1,
        le=100_000,
    )

    # the runner
    step_timeout: float = setting(3600.0, gt=0)
    keep_workspace_on_failure: bool = setting(False)
    render_timeout: float = setting(2.0, gt=0)
    render_max_output: int = setting(10_000_000, gt=0)
    render_threads: int = setting(
        2,
        "Threads rendering expressions off the event loop.",
        ge=1,
        le=64,
    )
    max_each: int = setting(1000, "Iterations of one step's each.", ge=1)
    max_log_line: int = setting(
        65_536,
        "Characters of one log line or event; longer is cut.",
        ge=80,
    )
    max_task_log: int = setting(
        10_000_000,
        "Characters of one task's action log lines; later lines are dropped.",
        ge=1000,
    )
    dry_run_max_files: int = setting(1000, "Files a dry run returns.", ge=0)
    dry_run_max_bytes: int = setting(
        7_000_000,
        "Bytes of the files a dry run returns (base64 fits dry_run_max_result).",
        ge=0,
    )

    # the service
    log_format: Literal["text", "json"] = setting(
        "text",
        "Log lines as text or as one JSON object per line (serve, worker; --log-format). "
        "JSON lines about a task carry task_id, step_id, attempt, worker_id, template and"
        " user.",
    )
    task_log: bool = setting(
        True,
        "Log one line at info level when a task starts and when it ends (id, template, "
        "user, outcome, duration) on the falsework.tasks logger.",
    )
    cluster_metrics_interval: float = setting(
        15.0,
        "Seconds between computations of the cluster metrics from the database (by one "
        "node at a time; /metrics of every node serves the latest).",
        gt=0,
    )
    cluster_metrics_lag: float = setting(
        30.0,
        "Seconds the cluster metrics stay behind the clock when reading ended runs and "
        "steps, so no event committing late is missed (at least twice the longest "
        "transaction).",
        ge=0,
    )
    host: str = setting("127.0.0.1")
    port: int = setting(7007)
    max_open_tasks_per_user: int | None = setting(None, ge=1)
    long_poll_timeout: float = setting(30.0, "How long GET .../events waits for a new event.", gt=0)
    sse_keepalive: float = setting(15.0, "Seconds between keep-alive comments on idle SSE.", gt=0)
    header_timeout: float = setting(10.0, "Seconds a client has to send a request's headers.", gt=0)
    body_timeout: float = setting(60.0, "Seconds a client has to send a request's body.", gt=0)
    max_json_depth: int = setting(
        64,
        "Deepest nesting of objects and arrays a JSON request body may have.",
        ge=4,
        le=200,
    )
    max_streams_per_user: int = setting(
        20,
        "Event streams and long polls one user holds per process.",
        ge=1,
    )
    dry_run_workers: int = setting(2, "Child processes that run dry-runs.", ge=1, le=64)
    dry_run_queue: int = setting(8, "Dry-runs waiting for a child before 429.", ge=0)
    dry_run_timeout: float = setting(
        60.0,
        "Seconds one dry-run may take before it is killed.",
        gt=0,
    )
    dry_run_memory_mb: int = setting(1024, "Address space of a dry-run child, in MiB.", ge=64)
    dry_run_max_result: int = setting(10_000_000, "Largest dry-run result (JSON bytes).", gt=0)
    dry_runs_per_user: int = setting(2, "Dry-runs one user runs at once (per process).", ge=1)
    dry_runs_per_minute: int = setting(
        30,
        "Dry-runs one user may start per minute (per process).",
        ge=1,
    )

    # completion webhooks
    webhook_timeout: float = setting(10.0, "One delivery's HTTP timeout.", gt=0)
    webhook_max_tries: int = setting(12, "Tries of one delivery before it is given up.", ge=1)
    webhook_retry_base: float = setting(
        10.0,
        "Wait before the second try; doubled for each next one.",
        gt=0,
    )
    webhook_retry_max: float = setting(3600.0, "The longest wait between two tries.", gt=0)


_KINDS: dict[object, Kind] = {str: "str", Path: "path", bool: "bool", int: "int", float: "float"}


def _typed(declared: Scalar, annotation: object) -> Scalar:
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return replace(_typed(declared, inner), optional=True)
    if typing.get_origin(annotation) is Literal:
        return replace(declared, kind="choice", choices=tuple(str(a) for a in args))
    return replace(declared, kind=_KINDS[annotation])


ANNOTATIONS: dict[str, object] = dict(Scalars.__annotations__)
"""Each scalar setting's type, as ``Settings`` declares its field."""

SCALARS: dict[str, Scalar] = {
    name: _typed(getattr(Scalars, name), annotation) for name, annotation in ANNOTATIONS.items()
}
"""Every scalar setting by name, in the order ``Scalars`` declares them."""


Options = TypeVar("Options", bound="DataclassInstance")


def options_of(kind: type[Options], settings: object, prefix: str = "", **given: Any) -> Options:
    """An option object ``kind`` (a dataclass) of ``settings`` (``Settings`` or
    ``LocalSettings``): each field that has a scalar setting named ``prefix`` + its
    name takes that setting's value; ``given`` holds the fields whose value is
    another setting's or derived from some; any other field keeps its default."""
    values = {
        item.name: getattr(settings, prefix + item.name)
        for item in fields(kind)
        if item.init and prefix + item.name in SCALARS
    }
    return kind(**{**values, **given})
