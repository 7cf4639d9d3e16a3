"""An in-memory task and ``TaskIO``: how the runner runs with no database
(``falsework run``, dry runs, tests). A real implementation, not a stand-in."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from falsework.types import JSONObject


@dataclass
class LocalTask:
    """A task that lives only in this process (fits ``TaskInput``)."""

    spec: JSONObject
    secrets: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_by: str | None = None
    attempt: int = 1
    step_state: dict[str, JSONObject] = field(default_factory=dict)
    checkpoints: dict[str, Any] = field(default_factory=dict)


@dataclass
class MemoryTaskIO:
    """Keeps events, step states and checkpoints in lists and dicts.

    ``on_event`` (optional) sees each event as it is emitted, e.g. to draw a
    progress display.
    """

    events: list[tuple[str, JSONObject]] = field(default_factory=list)
    steps: dict[str, JSONObject] = field(default_factory=dict)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    on_event: Callable[[str, JSONObject], None] | None = None

    async def emit(self, body: JSONObject, type: str = "log") -> None:
        self.events.append((type, body))
        if self.on_event is not None:
            self.on_event(type, body)

    async def save_step(self, step_id: str, state: JSONObject) -> None:
        self.steps[step_id] = copy.deepcopy(state)

    async def checkpoint_get(self, key: str) -> tuple[bool, Any]:
        if key in self.checkpoints:
            return True, copy.deepcopy(self.checkpoints[key])
        return False, None

    async def checkpoint_set(self, key: str, value: Any) -> None:
        self.checkpoints[key] = copy.deepcopy(value)

    def resumed(self, task: LocalTask) -> LocalTask:
        """The same task as a recovered attempt would see it: its saved steps
        and checkpoints, the next attempt number."""
        return LocalTask(
            spec=task.spec,
            secrets=task.secrets,
            id=task.id,
            created_by=task.created_by,
            attempt=task.attempt + 1,
            step_state=copy.deepcopy(self.steps),
            checkpoints=copy.deepcopy(self.checkpoints),
        )
