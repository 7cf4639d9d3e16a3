"""The server's list of scaffolded repositories (table ``scaffolds``).

A step that records a scaffold (publish:git with ``scaffold: true``) or updates
one (scaffold:update) says so in its ``scaffold`` output: the repository
(``remote#branch``), the template, the version its branch holds, the recorded
state and, for an update, the update's branch and pull request. The worker's
executor is wrapped by :func:`recording`: when a task completes, each such
output becomes the repository's row (the last word wins). Steps completed in an
earlier attempt (a recovered task) are read from the task's saved steps.

A row keeps its tasks: the task that made the repository (``createTask`` in the
record) and the last one that looked at it (``task_id``) are flagged ``keep``
(``Broker.keep``), so retention never deletes a task a scaffold points at; an
update task the row no longer points at is released to retention again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from falsework.engine.models import ScaffoldRecord
from falsework.errors import NotFoundError
from falsework.taskio import TaskInput, TaskIO
from falsework.types import JSONObject
from falsework.updates.state import UPDATE_KIND

Run = Callable[[TaskInput, TaskIO], Awaitable[JSONObject]]

# the key of an update task's spec naming the repository it updates
UPDATE_MARK = "falseworkUpdate"


class Ledger(Protocol):
    """Where scaffolds are recorded (the engine's broker)."""

    async def scaffold_get(self, repository: str) -> ScaffoldRecord | None: ...

    async def scaffold_record(self, record: ScaffoldRecord) -> None: ...

    async def keep(self, task_id: str, keep: bool = True) -> None: ...


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


def record_of(
    scaffold: JSONObject, task: TaskInput, previous: ScaffoldRecord | None = None
) -> ScaffoldRecord:
    """The row of ``scaffold`` as ``task`` reported it; ``previous``: the row so far,
    whose creating task an update carries over."""
    record = {k: v for k, v in scaffold.items() if k not in ("repository", "templateRef")}
    created: Any = task.id
    if scaffold.get("kind") == UPDATE_KIND and previous is not None:
        created = previous.record.get("createTask") or previous.task_id
    if created:
        record["createTask"] = created
    return ScaffoldRecord(
        repository=str(scaffold["repository"]),
        template_ref=str(scaffold["templateRef"]),
        version=str(scaffold.get("version") or ""),
        record=record,
        task_id=task.id,
        created_by=task.created_by,
    )


def kept_tasks(record: ScaffoldRecord) -> set[str]:
    """The tasks a scaffold's row points at."""
    ids = {record.task_id, record.record.get("createTask")}
    return {str(i) for i in ids if i}


async def remember(ledger: Ledger, scaffold: JSONObject, task: TaskInput) -> None:
    """Record ``scaffold`` (a step's output), keep the tasks its row points at
    from retention, and release the one it pointed at before and no longer does."""
    previous = await ledger.scaffold_get(str(scaffold["repository"]))
    record = record_of(scaffold, task, previous)
    await ledger.scaffold_record(record)
    kept = kept_tasks(record)
    released = kept_tasks(previous) - kept if previous is not None else set()
    for task_id, keep in [*((i, True) for i in sorted(kept)), *((i, False) for i in released)]:
        try:
            await ledger.keep(task_id, keep)
        except NotFoundError:
            pass  # a task of an older row, deleted before rows kept their tasks


def recording(run: Run, ledger: Ledger) -> Run:
    """``run``, recording the scaffolds its task's steps report once it completes."""

    async def wrapped(task: TaskInput, io: TaskIO) -> JSONObject:
        found: dict[str, JSONObject] = {}
        for step_id, state in (task.step_state or {}).items():
            take(found, step_id, state)
        output = await run(task, _Watched(io, found))
        for scaffold in found.values():
            await remember(ledger, scaffold, task)
        return output

    return wrapped
