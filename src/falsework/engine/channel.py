"""``TaskChannel``: the engine's ``TaskIO`` for one claimed task.

Every write goes to the worker's write-behind buffer (``engine/batcher.py``),
fenced by the task's claim token: ``emit`` and ``save_step`` return at once,
``checkpoint_set`` once the checkpoint is durable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from falsework.engine.batcher import Batcher
from falsework.engine.codec import dumps
from falsework.engine.models import EVENT_TYPES, ClaimedTask
from falsework.errors import InputError
from falsework.types import JSONObject

# the task-level final events are the worker's to write, not the run's
_RUN_EVENT_TYPES = frozenset(EVENT_TYPES) - {"completion"}


class TaskChannel:
    __slots__ = ("_batcher", "_checkpoints", "_gate", "_id", "_token")

    def __init__(
        self,
        batcher: Batcher,
        task: ClaimedTask,
        gate: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._batcher = batcher
        self._id = task.id
        self._token = task.claim_token
        self._checkpoints = dict(task.checkpoints)
        self._gate = gate

    async def emit(self, body: JSONObject, type: str = "log") -> None:
        if type not in _RUN_EVENT_TYPES:
            raise InputError(f"A task cannot emit an event of type {type!r}")
        if self._gate is not None and body.get("status") == "processing" and "stepId" in body:
            # A step announces its start (Backstage's 'processing' event) before
            # its action runs: the self-fencing gate (engine/fence.py) holds it
            # while this worker cannot be sure the task is still its own.
            await self._gate()
        if self._batcher.event(self._id, self._token, type, dumps(body)):
            await self._batcher.backpressure()

    async def save_step(self, step_id: str, state: JSONObject) -> None:
        # Buffered like emit: it reaches the database with the next flush, before
        # the task's final write. A crash in between re-runs the step on recovery
        # (actions make that safe with checkpoints, which do wait).
        if self._batcher.step(self._id, self._token, step_id, dumps(state)):
            await self._batcher.backpressure()

    async def checkpoint_get(self, key: str) -> tuple[bool, Any]:
        if key in self._checkpoints:
            return True, self._checkpoints[key]
        return False, None

    async def checkpoint_set(self, key: str, value: Any) -> None:
        text = dumps(value)
        self._checkpoints[key] = value
        await self._batcher.checkpoint(self._id, self._token, key, text)
