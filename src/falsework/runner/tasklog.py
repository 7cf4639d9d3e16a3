"""One line in the server's log when a task starts and one when it ends: its id,
template, user, outcome and duration (``falsework.tasks`` at info level; the
``task_log`` setting turns it off).

A wrapper around the executor the worker calls, like the metrics one: neither the
engine nor the steps know about it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from falsework.errors import LeaseLostError
from falsework.taskio import Executor, Outcome, TaskInput, TaskIO

log = logging.getLogger("falsework.tasks")


def log_tasks(executor: Executor, logger: logging.Logger = log) -> Executor:
    """``executor`` that logs each task's start and end."""

    async def run(task: TaskInput, io: TaskIO) -> Outcome:
        info = task.spec.get("templateInfo") if isinstance(task.spec, dict) else None
        template = str(info.get("entityRef", "?")) if isinstance(info, dict) else "?"
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
