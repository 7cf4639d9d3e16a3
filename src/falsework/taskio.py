"""The contract between a task's runner and whoever keeps the task (neutral ground).

The runner (layer 4) and the engine (layer 5) both import this module and
neither imports the other's internals: the engine hands an executor a claimed
task (``TaskInput``) and a ``TaskIO``; the executor answers with an ``Outcome``
(status, final event, whether to keep the secrets). The words of that final
event, and of the few events the engine writes on its own (a cancel, a
recovery), belong to the runner: the engine receives them as a ``Wording``.
``falsework run`` implements ``TaskIO`` in memory; that is how the runner runs
with no database at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from falsework.types import JSONObject

# How a task whose worker vanished comes back, decided by the templates layer
# when the task is created and stored with it: "resume" after the last completed
# step, "startOver" from the first step, "none" fails it.
Recovery = Literal["resume", "startOver", "none"]
RECOVERIES: tuple[Recovery, ...] = ("resume", "startOver", "none")

FinalStatus = Literal["completed", "failed", "cancelled"]


class TaskIO(Protocol):
    """What a running task may do to the outside world."""

    async def emit(self, body: JSONObject, type: str = "log") -> None:
        """Append one event (Backstage shape: ``{"message", "stepId"?, "status"?}``).

        The body is already redacted by the runner. The engine buffers it: the
        call returns before the event is written, the write lands with its next
        flush (always before the task's final write), fenced by the claim token.
        A refused write (the task is no longer ours) raises ``LeaseLostError`` on
        the next call.
        """
        ...

    async def save_step(self, step_id: str, state: JSONObject) -> None:
        """Record one step's final state: ``{"status": ..., "output": {...}}`` (redacted).

        Buffered like ``emit`` by the engine: written with its next flush, always
        before the task's final write, not durable when the call returns. A crash
        in between re-runs the step on recovery (actions that must not repeat
        work use checkpoints, whose ``checkpoint_set`` does wait until durable).
        """
        ...

    async def checkpoint_get(self, key: str) -> tuple[bool, Any]:
        """Return ``(found, value)`` of a stored action checkpoint."""
        ...

    async def checkpoint_set(self, key: str, value: Any) -> None:
        """Store an action checkpoint (JSON-serialisable) for idempotent retries;
        returns once it is durable."""
        ...


class TaskInput(Protocol):
    """The claimed task handed to an executor (the engine's ClaimedTask fits it)."""

    @property
    def id(self) -> str: ...

    @property
    def spec(self) -> JSONObject: ...

    @property
    def secrets(self) -> dict[str, str]: ...

    @property
    def created_by(self) -> str | None: ...

    @property
    def attempt(self) -> int: ...

    @property
    def step_state(self) -> dict[str, JSONObject]:
        """Saved steps by id: ``{"status": "completed", "output": {...}}``."""
        ...

    @property
    def checkpoints(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Outcome:
    """How a run ends: the task's final status and the event written with it."""

    status: FinalStatus
    event_type: Literal["completion", "cancelled"]
    body: JSONObject
    # a failed or cancelled task keeps its (encrypted) secrets for a retry
    keep_secrets: bool


# What the engine runs for each claimed task. It returns the run's outcome; it
# raises only CancelledError (the engine stopped the run) and LeaseLostError
# (the task is no longer this worker's); anything else is a bug the engine
# reports as a failure in the executor's own words (``Wording.failed``).
Executor = Callable[[TaskInput, TaskIO], Awaitable[Outcome]]


class Wording(Protocol):
    """The final events the engine writes without an executor's say."""

    def failed(self, name: str, message: str) -> Outcome:
        """The executor raised (or gave output that is not JSON)."""
        ...

    def cancelled(self) -> Outcome:
        """The task was cancelled: at once while open, or its run stopped."""
        ...

    def abandoned(self) -> Outcome:
        """Its worker stopped heartbeating and its recovery is ``none``."""
        ...

    def recovered(self) -> JSONObject:
        """The body of the ``recovered`` event of a task re-opened after its
        worker stopped heartbeating."""
        ...
