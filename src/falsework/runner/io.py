"""The seam between the runner (layer 4) and whoever persists a task (the engine).

The runner only talks to a ``TaskIO``; the engine implements it with fenced writes
to the database, ``falsework run`` with an in-memory/console implementation. That
is how the runner runs with no database at all.
"""

from __future__ import annotations

from typing import Any, Protocol

from falsework.types import JSONObject


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
