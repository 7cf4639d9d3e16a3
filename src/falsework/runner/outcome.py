"""How a task's run ends, in Backstage's words.

``as_executor`` turns the runner (output or a raised failure) into the engine's
executor (an ``Outcome``); ``BACKSTAGE`` is the ``Wording`` the engine uses for
the final events it writes itself (a cancel, a recovery, a broken executor).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from falsework.errors import FalseworkError, LeaseLostError
from falsework.taskio import Executor, Outcome, TaskInput, TaskIO
from falsework.types import JSONObject

log = logging.getLogger("falsework.runner")


class BackstageWording:
    """Backstage's final events: ``Run completed with status: …``."""

    def completed(self, output: JSONObject) -> Outcome:
        body = {"message": "Run completed with status: completed", "output": output}
        return Outcome("completed", "completion", body, keep_secrets=False)

    def failed(self, name: str, message: str) -> Outcome:
        body = {
            "message": "Run completed with status: failed",
            "error": {"name": name, "message": message},
        }
        return Outcome("failed", "completion", body, keep_secrets=True)

    def cancelled(self) -> Outcome:
        body = {"message": "Run completed with status: cancelled"}
        return Outcome("cancelled", "cancelled", body, keep_secrets=True)

    def abandoned(self) -> Outcome:
        return self.failed(
            "Error",
            "The worker running this task stopped heartbeating and the "
            "task's EXPERIMENTAL_recovery strategy is 'none'",
        )

    def recovered(self) -> JSONObject:
        return {"message": "Task recovered after its worker stopped heartbeating"}


BACKSTAGE = BackstageWording()


def as_executor(run: Callable[[TaskInput, TaskIO], Awaitable[JSONObject]]) -> Executor:
    """The engine's executor around ``run`` (a ``WorkflowRunner``, or any coroutine
    function returning a task's output): its output becomes a completion, a
    ``FalseworkError`` a failure with its own name and message, any other
    exception a failure named ``Error`` (logged with its traceback)."""

    async def execute(task: TaskInput, io: TaskIO) -> Outcome:
        try:
            output = await run(task, io)
        except LeaseLostError:
            raise  # the task is another worker's now: nothing more to write
        except FalseworkError as exc:
            return BACKSTAGE.failed(exc.name, exc.message or exc.name)
        except Exception as exc:
            log.exception("task %s: the run raised", task.id)
            # never an empty message (a bare TimeoutError() has none)
            return BACKSTAGE.failed("Error", str(exc) or type(exc).__name__)
        return BACKSTAGE.completed(output)

    return execute
