"""Each step's idempotency key: one value per step (per ``each`` item) that stays
the same however often the step is run again for the same reason.

A step's key is issued the first time one of its actions asks for it
(``ActionContext.idempotency_key()``), as a version-5 UUID of the task id, the
step's scope (``deploy`` or ``deploy[2]``) and the attempt that issued it, and is
stored with the task (a checkpoint, durable before the action sees it). A run
that starts the step again after its earlier run was interrupted (the worker
crashed, was fenced, or the task was cancelled mid-step and retried) finds the
stored key: the same key again. When a step ends, completed or failed, its key
is spent: a user's retry that runs it again gets a fresh key (issued by the
retry's attempt), so a remote service that remembers keys does the work again
instead of replaying the earlier answer. See docs/actions.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from falsework.actions.context import CheckpointStore, StepKey, derive

__all__ = ["CHECKPOINT", "StepKeys", "derive"]

# The checkpoint of a step's keys (by scope); an action's own checkpoints are
# ``<step>:<key>``, which never starts with this.
CHECKPOINT = "falsework.idempotency:"


class StepKeys:
    """The keys of one run of one task."""

    __slots__ = ("_attempt", "_held", "_store", "_task_id")

    def __init__(
        self,
        store: CheckpointStore,
        task_id: str,
        attempt: int,
        stored: Iterable[str] | None = None,
    ) -> None:
        self._store = store
        self._task_id = task_id
        self._attempt = attempt
        # The steps that may hold keys: those the task had when claimed (the names
        # of its checkpoints, ``stored``) and those this run issued; only this
        # module writes such checkpoints. None: not known, the store is asked.
        self._held: set[str] | None = (
            None if stored is None else {k for k in stored if k.startswith(CHECKPOINT)}
        )

    async def key(self, step_id: str, scope: str) -> StepKey:
        """The key of ``scope`` (a step, or one item of a step's ``each``);
        ``earlier`` when an earlier run stored it (and did not end the step)."""
        name = CHECKPOINT + step_id
        found, stored = await self._store.checkpoint_get(name)
        keys: dict[str, Any] = dict(stored) if found and isinstance(stored, dict) else {}
        key = keys.get(scope)
        if isinstance(key, str):
            return StepKey(key, earlier=key != derive(self._task_id, scope, self._attempt))
        key = keys[scope] = derive(self._task_id, scope, self._attempt)
        await self._store.checkpoint_set(name, keys)
        if self._held is not None:
            self._held.add(name)
        return StepKey(key, earlier=False)

    async def spend(self, step_id: str) -> None:
        """The step ended (completed or failed): a later run of it gets new keys."""
        name = CHECKPOINT + step_id
        if self._held is not None and name not in self._held:
            return  # no key was ever stored for it
        found, stored = await self._store.checkpoint_get(name)
        if found and stored:
            await self._store.checkpoint_set(name, {})
