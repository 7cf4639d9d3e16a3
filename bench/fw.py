"""Glue for Falsework's own benchmarks: settings, a broker, the real runner, a worker.

Everything goes through the public layer contracts (docs/internals.md): ``Broker``,
``TaskWorker`` and ``WorkflowRunner`` as a server process wires them, plus the two
probe actions of ``bench.actions``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import fresh_database

SPEC_VERSION = "scaffolder.backstage.io/v1beta3"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def _secret_key() -> str:
    """One Fernet key for this run, shared with every child process (one cluster)."""
    key = os.environ.get("FALSEWORK_SECRET_KEY")
    if not key:
        from cryptography.fernet import Fernet

        key = Fernet.generate_key().decode()
        os.environ["FALSEWORK_SECRET_KEY"] = key
    return key


def task_spec(steps: list[dict[str, Any]], name: str = "bench") -> dict[str, Any]:
    """A Backstage TaskSpec as ``Template.task_spec`` builds it, for pre-created tasks."""
    return {
        "apiVersion": SPEC_VERSION,
        "steps": steps,
        "output": {},
        "parameters": {},
        "user": {"ref": "user:default/bench"},
        "templateInfo": {
            "entityRef": f"template:default/{name}",
            "baseUrl": "file:///bench/template.yaml",
            "entity": {"metadata": {"name": name}},
        },
    }


def log_step(message: str = "hello") -> dict[str, Any]:
    return {"id": "log", "name": "Log", "action": "debug:log", "input": {"message": message}}


def wait_step(seconds: float) -> dict[str, Any]:
    return {"id": "wait", "name": "Wait", "action": "debug:wait", "input": {"seconds": seconds}}


def settings(url: str, **overrides: Any) -> Any:
    from falsework.config import Settings

    work = Path(tempfile.mkdtemp(prefix="falsework-bench-"))
    return Settings(
        database_url=url,
        data_dir=work,
        work_dir=work / "work",
        secret_key=_secret_key(),
        **overrides,
    )


async def open_broker(url: str, **overrides: Any) -> Any:
    from falsework.wiring import open_broker as open_with

    return await open_with(settings(url, **overrides))


def worker_options(s: Any) -> Any:
    """The worker's options; and the GC tuned as `falsework serve` and `falsework
    worker` tune it at their start (engine/heap.py), so an in-process worker here
    costs what theirs does."""
    from falsework.engine.heap import freeze_startup_heap
    from falsework.wiring import worker_options as options_of

    freeze_startup_heap()
    return options_of(s)


def executor(s: Any) -> Any:
    """The real workflow runner (built-in actions + the bench probes), as the
    engine's executor."""
    from bench.actions import BENCH_ACTIONS
    from falsework.actions.registry import ActionRegistry
    from falsework.runner import as_executor
    from falsework.wiring import workflow_runner

    registry = ActionRegistry.default(s.action_policies())
    for item in BENCH_ACTIONS:
        if item.id not in registry:
            registry.register(item)
    return as_executor(workflow_runner(s, registry=registry))


def new_tasks(spec: dict[str, Any], n: int, created_by: str | None = None) -> list[Any]:
    from falsework.engine import NewTask

    return [NewTask(spec=spec, created_by=created_by) for _ in range(n)]


async def create_many(broker: Any, spec: dict[str, Any], n: int, **kw: Any) -> list[str]:
    ids: list[str] = []
    batch = 2_000
    for start in range(0, n, batch):
        ids.extend(await broker.create_many(new_tasks(spec, min(batch, n - start), **kw)))
    return ids


@contextlib.asynccontextmanager
async def database(kind: str, prefix: str) -> AsyncIterator[str]:
    """A fresh database URL: ``postgres`` (CREATE DATABASE) or ``sqlite`` (new file)."""
    if kind == "postgres":
        async with fresh_database(prefix) as dsn:
            yield dsn
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
        try:
            yield f"sqlite:///{folder / 'falsework.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)


async def sql(url: str, query: str) -> list[tuple[Any, ...]]:
    """Run one read-only query straight on the database (to count, not to drive)."""
    if url.startswith("postgres"):
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return [tuple(r) for r in await conn.fetch(query)]
        finally:
            await conn.close()
    path = url.split("sqlite:///", 1)[1]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return list(conn.execute(query).fetchall())


def ts(value: Any) -> float:
    """A database timestamp (datetime, or SQLite's text) as POSIX seconds; naive = UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# Variables of the caller's shell that change what a server costs, dropped from its
# children: a run measures the default configuration whatever shell started it
# (OTEL_* turns tracing on, COVERAGE_PROCESS_* starts coverage in every child of a
# venv with coverage's .pth, the others slow the interpreter or asyncio down).
COSTLY_ENV = ("OTEL_", "COVERAGE_", "COV_CORE_")
COSTLY_PYTHON = (
    "PYTHONASYNCIODEBUG",
    "PYTHONDEVMODE",
    "PYTHONMALLOC",
    "PYTHONPROFILEIMPORTTIME",
    "PYTHONTRACEMALLOC",
    "PYTHONWARNINGS",
)


def costly(name: str) -> bool:
    """Whether ``name`` is a variable ``env_for`` keeps from a child (see COSTLY_ENV)."""
    return name.startswith(COSTLY_ENV) or name in COSTLY_PYTHON


def env_for(url: str, **extra: str) -> dict[str, str]:
    """The environment of a child process on ``url``: FALSEWORK_* of ours and the
    variables that change what it costs (``costly``) not inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FALSEWORK_") and not costly(k)}
    env.update(
        {
            "FALSEWORK_DATABASE_URL": url,
            "FALSEWORK_SECRET_KEY": _secret_key(),
            "FALSEWORK_TEMPLATES": str(TEMPLATES),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env
