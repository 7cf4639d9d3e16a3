"""The server's list of scaffolded repositories (table ``scaffolds``).

A step that records a scaffold (publish:git with ``scaffold: true``) or updates
one (scaffold:update) says so in its ``scaffold`` output: the repository
(``remote#branch``), the template, the version its branch holds, the recorded
state and, for an update, the update's branch and pull request. The worker's
executor is wrapped by :func:`recording`: when a task completes, each such
output becomes the repository's row (the last word wins). Steps completed in an
earlier attempt (a recovered task) are read from the task's saved steps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from falsework.engine.models import ScaffoldRecord
from falsework.taskio import TaskInput, TaskIO
from falsework.types import JSONObject

Run = Callable[[TaskInput, TaskIO], Awaitable[JSONObject]]
Write = Callable[[ScaffoldRecord], Awaitable[None]]


class _Watched:
    """A TaskIO that remembers the ``scaffold`` outputs of the steps it saves."""

    def __init__(self, io: TaskIO, found: dict[str, JSONObject]) -> None:
        self._io = io
        self._found = found

    async def emit(self, body: JSONObject, type: str = "log") -> None:
        await self._io.emit(body, type)

    async def save_step(self, step_id: str, state: JSONObject) -> None:
        take(self._found, step_id, state)
        await self._io.save_step(step_id, state)

    async def checkpoint_get(self, key: str) -> tuple[bool, Any]:
        return await self._io.checkpoint_get(key)

    async def checkpoint_set(self, key: str, value: Any) -> None:
        await self._io.checkpoint_set(key, value)


def take(found: dict[str, JSONObject], step_id: str, state: JSONObject) -> None:
    output = state.get("output") if isinstance(state, dict) else None
    scaffold = output.get("scaffold") if isinstance(output, dict) else None
    if state.get("status") == "completed" and isinstance(scaffold, dict):
        if isinstance(scaffold.get("repository"), str) and scaffold.get("templateRef"):
            found[step_id] = scaffold


def record_of(scaffold: JSONObject, task: TaskInput) -> ScaffoldRecord:
    return ScaffoldRecord(
        repository=str(scaffold["repository"]),
        template_ref=str(scaffold["templateRef"]),
        version=str(scaffold.get("version") or ""),
        record={k: v for k, v in scaffold.items() if k not in ("repository", "templateRef")},
        task_id=task.id,
        created_by=task.created_by,
    )


def recording(run: Run, write: Write) -> Run:
    """``run``, recording the scaffolds its task's steps report once it completes."""

    async def wrapped(task: TaskInput, io: TaskIO) -> JSONObject:
        found: dict[str, JSONObject] = {}
        for step_id, state in (task.step_state or {}).items():
            take(found, step_id, state)
        output = await run(task, _Watched(io, found))
        for scaffold in found.values():
            await write(record_of(scaffold, task))
        return output

    return wrapped
