"""What an action handler gets: ``ActionContext``.

The runner builds one context per step run (per ``each`` item). Everything an
action may touch goes through it: the validated input, a logger whose lines
become the task's events, the workspace (created on first use), outputs,
secrets, checkpoints for idempotent side effects, temp dirs, and ``signal``,
set when the step is cancelled or times out.

It carries only the run's own data. What a server configures for an action
family (the folders fetch may read, where publish may push, the egress policy)
is given to the action once, when the registry is built: see
``falsework.actions.policies``.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from falsework.actions.paths import resolve_safe_path
from falsework.confine import Tree

if TYPE_CHECKING:
    from falsework.actions.rehearsal import Recording
    from falsework.templating import Renderer

InputT = TypeVar("InputT", bound=BaseModel)
T = TypeVar("T")

LogSink = Callable[[str, str], None]  # (level, message); safe to call from any thread


class CheckpointStore(Protocol):
    """Where checkpoints live (the runner's ``TaskIO`` fits)."""

    async def checkpoint_get(self, key: str) -> tuple[bool, Any]: ...

    async def checkpoint_set(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class StepKey:
    """A step's idempotency key (``ActionContext.step_key()``): ``earlier`` when
    an earlier run of the step was given it and was interrupted, so what that
    run made may already exist (marked with this key)."""

    value: str
    earlier: bool


# Fixed forever: changing it would change every key of every task in flight.
STEP_KEY_NAMESPACE = uuid.UUID("5d0c8f0e-6a0b-4f53-9a43-1f2d7c1e9b10")


def derive(task_id: str, scope: str, attempt: int) -> str:
    """The idempotency key issued for ``scope`` (a step, or one item of its
    ``each``) of ``task_id`` by attempt ``attempt`` (``falsework.runner.idempotency``
    stores and spends them)."""
    return str(uuid.uuid5(STEP_KEY_NAMESPACE, f"{task_id}/{scope}/{attempt}"))


class StepLogger:
    """``logging.Logger``-like: each call becomes one log event of the step."""

    __slots__ = ("_sink",)

    def __init__(self, sink: LogSink) -> None:
        self._sink = sink

    def debug(self, message: object) -> None:
        self._sink("debug", str(message))

    def info(self, message: object) -> None:
        self._sink("info", str(message))

    def warning(self, message: object) -> None:
        self._sink("warn", str(message))

    warn = warning

    def error(self, message: object) -> None:
        self._sink("error", str(message))


class Workspace:
    """A task's working directory, created only when something first needs it:
    most steps of most tasks never touch disk, and a mkdir per task adds up."""

    __slots__ = ("_name", "_path", "created")

    def __init__(self, path: Path, name: str | None = None) -> None:
        # ``path / name`` is joined when first asked for: most tasks never ask.
        self._path = path
        self._name = name
        self.created = False  # no stat here: constructing one must cost no syscall

    @property
    def path(self) -> Path:
        if self._name is not None:
            self._path, self._name = self._path / self._name, None
        return self._path

    def ensure(self) -> Path:
        if not self.created:
            self.path.mkdir(parents=True, exist_ok=True)
            self.created = True
        return self.path


class Signal:
    """Set when a step is cancelled or times out: ``asyncio.Event``'s
    ``is_set`` / ``set`` / ``clear`` / ``wait``, for the loop's thread (``is_set``
    may be read from any). Unlike an ``asyncio.Event`` it makes no queue until
    someone waits (an empty one costs 728 bytes, and every running step has a
    signal that almost no action waits on)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(True)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        """Return True once set (at once when it is)."""
        if self._set:
            return True
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        try:
            return await fut
        finally:
            if self._waiters is not None and fut in self._waiters:
                self._waiters.remove(fut)


class ActionContext(Generic[InputT]):
    """The context of one action run."""

    # one per running step: no instance dict
    __slots__ = (
        "_checkpoints",
        "_idempotency",
        "_output",
        "_temp_dirs",
        "_temp_root",
        "_workspace",
        "input",
        "is_dry_run",
        "logger",
        "recording",
        "renderer",
        "secrets",
        "signal",
        "step_id",
        "task_id",
        "template_context",
        "template_dir",
        "template_ref",
        "user",
    )

    def __init__(
        self,
        *,
        input: InputT,
        log: LogSink,
        workspace: Workspace,
        secrets: dict[str, str],
        user: dict[str, Any],
        task_id: str,
        step_id: str,
        checkpoints: CheckpointStore,
        renderer: Renderer,
        output: Callable[[str, Any], None],
        is_dry_run: bool = False,
        template_dir: Path | None = None,
        signal: Signal | asyncio.Event | None = None,
        temp_root: Path | None = None,
        template_context: Mapping[str, Any] | None = None,
        recording: Recording | None = None,
        idempotency: Callable[[], Awaitable[StepKey]] | None = None,
        template_ref: str | None = None,
    ) -> None:
        self.input = input
        self.logger = StepLogger(log)
        self._workspace = workspace
        self.secrets = secrets
        self.user = user
        self.task_id = task_id
        self.step_id = step_id
        self.is_dry_run = is_dry_run
        self.template_dir = template_dir
        self.signal: Signal | asyncio.Event = signal if signal is not None else Signal()
        self.renderer = renderer
        self._checkpoints = checkpoints
        self._output = output
        self._temp_root = temp_root
        self._temp_dirs: list[str] = []
        # What `${{ }}` saw when the step's input was rendered (without secrets),
        # for actions that evaluate expressions of their own (http:request `until`).
        self.template_context: Mapping[str, Any] = template_context or {}
        # In a rehearsal, the step's recorded call (``falsework.actions.rehearsal``):
        # the action's recorder runs instead of its handler and adds to it.
        self.recording = recording
        self._idempotency = idempotency
        # The task's template (Backstage's ctx.templateInfo.entityRef), when known.
        self.template_ref = template_ref

    @property
    def workspace(self) -> Path:
        return self._workspace.ensure()

    def output(self, name: str, value: Any) -> None:
        self._output(name, value)

    def resolve_path(self, user_path: str) -> Path:
        """A path inside the workspace, or ``UnsafePathError`` (a check of where
        it leads now; to read or write files, use :meth:`workspace_tree`)."""
        return resolve_safe_path(self.workspace, user_path)

    def workspace_tree(self) -> Tree:
        """The workspace opened as a :class:`~falsework.confine.Tree`, for file
        operations that cannot leave it (no path, no link); close it when done
        (``with ctx.workspace_tree() as ws:``), in the thread doing the work."""
        return Tree(self.workspace)

    async def checkpoint(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` once per task: a retried or recovered task gets the stored
        value instead of repeating the side effect."""
        full = f"{self.step_id}:{key}"
        found, value = await self._checkpoints.checkpoint_get(full)
        if found:
            return value  # type: ignore[no-any-return]
        result = await fn()
        await self._checkpoints.checkpoint_set(full, result)
        return result

    async def idempotency_key(self) -> str:
        """This step's idempotency key (a UUID): the same in every run of the step
        that follows an interrupted one (a crashed or fenced worker, a recovery),
        a new one once the step has ended and a retry runs it again. Send it to
        services that deduplicate requests (``Idempotency-Key``), or mark what the
        step creates with it to find it again (``falsework.runner.idempotency``)."""
        return (await self.step_key()).value

    async def step_key(self) -> StepKey:
        """:meth:`idempotency_key`, and whether an interrupted earlier run of the
        step was given it too."""
        if self._idempotency is None:
            # no runner behind this context (a test's own): stable for the context
            return StepKey(derive(self.task_id, self.step_id, 0), earlier=False)
        return await self._idempotency()

    def create_temp_dir(self) -> Path:
        """A fresh directory removed when the step ends."""
        if self._temp_root is not None:
            self._temp_root.mkdir(parents=True, exist_ok=True)
        path = tempfile.mkdtemp(prefix="falsework-", dir=self._temp_root)
        self._temp_dirs.append(path)
        return Path(path)

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work in a thread without blocking the event loop.

        On cancellation the signal is set and the thread is waited for (blocking
        work here checks ``signal`` between files), so nothing keeps writing into
        a workspace the runner is about to remove.
        """
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, functools.partial(fn, *args))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self.signal.set()
            await asyncio.wait([future])
            raise

    async def aclose(self) -> None:
        """Remove this step's temp dirs (the runner calls it)."""
        if self._temp_dirs:
            dirs, self._temp_dirs = self._temp_dirs, []
            await asyncio.to_thread(_remove_all, dirs)


def _remove_all(paths: list[str]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
