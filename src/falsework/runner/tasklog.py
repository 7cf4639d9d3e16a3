"""One line in the server's log when a task starts and one when it ends: its id,
template, user, outcome and duration (``falsework.tasks`` at info level; the
``task_log`` setting turns it off); and the task's fields on every line logged
while it runs (``bind_context``, see ``falsework.logs``).

Wrappers around the executor the worker calls, like the metrics one: neither the
engine nor the steps know about them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from falsework.errors import LeaseLostError
from falsework.logs import bind_step, bind_task
from falsework.taskio import Executor, Outcome, TaskInput, TaskIO
from falsework.types import JSONObject

log = logging.getLogger("falsework.tasks")


def template_of(task: TaskInput) -> str | None:
    """The entity ref of the template a task runs (None when its spec has none)."""
    info = task.spec.get("templateInfo") if isinstance(task.spec, dict) else None
    ref = info.get("entityRef") if isinstance(info, dict) else None
    return str(ref) if ref is not None else None


def bind_context(executor: Executor, worker_id: Callable[[], str | None]) -> Executor:
    """``executor`` with the task's fields (id, attempt, template, user, the worker's
    id, the running step) bound for every log line of its run."""

    def run(task: TaskInput, io: TaskIO) -> Awaitable[Outcome]:
        # no coroutine of its own: called inside the run's asyncio task, it binds
        # the fields in that task's context and hands back the inner run
        bind_task(
            task.id,
            attempt=task.attempt,
            template=template_of(task),
            user=task.created_by,
            worker_id=worker_id(),
        )
        return executor(task, _StepIO(io))

    return run


class _StepIO:
    """A TaskIO that binds the step whose 'processing' event goes out, and unbinds
    it when the step ends; once a step failed, it is bound between steps instead of
    none (so the line saying the task failed names it)."""

    __slots__ = ("_failed", "_inner")

    def __init__(self, inner: TaskIO) -> None:
        self._inner = inner
        self._failed: str | None = None

    async def emit(self, body: JSONObject, type: str = "log") -> None:
        step, status = body.get("stepId"), body.get("status")
        if isinstance(step, str) and isinstance(status, str):
            if status == "processing":
                bind_step(step)
            elif status == "failed":
                self._failed = self._failed or step
                bind_step(self._failed)
            else:
                bind_step(self._failed)
        await self._inner.emit(body, type)

    async def save_step(self, step_id: str, state: JSONObject) -> None:
        await self._inner.save_step(step_id, state)

    async def checkpoint_get(self, key: str) -> tuple[bool, Any]:
        return await self._inner.checkpoint_get(key)

    async def checkpoint_set(self, key: str, value: Any) -> None:
        await self._inner.checkpoint_set(key, value)

    def __getattr__(self, name: str) -> Any:
        # whatever else the engine's TaskIO offers passes through
        return getattr(self._inner, name)


def log_tasks(executor: Executor, logger: logging.Logger = log) -> Executor:
    """``executor`` that logs each task's start and end."""

    async def run(task: TaskInput, io: TaskIO) -> Outcome:
        template = template_of(task) or "?"
        who = f"{template} by {task.created_by or 'nobody'}"
        again = f", attempt {task.attempt}" if task.attempt > 1 else ""
        logger.info("task %s started: %s%s", task.id, who, again)
        started = time.monotonic()

        def end(status: str, detail: str = "") -> None:
            took = time.monotonic() - started
            logger.info("task %s %s in %.1fs: %s%s%s", task.id, status, took, who, again, detail)

        try:
            outcome = await executor(task, io)
        except asyncio.CancelledError:
            end("stopped", " (cancelled, or handed back at shutdown)")
            raise
        except LeaseLostError:
            end("stopped", " (its lease was lost: another worker has it)")
            raise
        except Exception as exc:
            end("failed", f" ({type(exc).__name__}: {_line(str(exc))})")
            raise
        error = outcome.body.get("error")
        detail = ""
        if isinstance(error, dict):
            detail = f" ({error.get('name', 'Error')}: {_line(str(error.get('message', '')))})"
        end(outcome.status, detail)
        return outcome

    return run


def _line(text: str) -> str:
    """The first line of ``text``, at most 200 characters."""
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else ""
