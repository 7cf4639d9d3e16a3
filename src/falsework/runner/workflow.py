"""The workflow runner: one task's steps, in order, with Backstage's events.

``WorkflowRunner`` runs a task (``await runner(task, io)`` gives its output or
raises ``TaskFailedError``); ``as_executor(runner)`` makes it the engine's
executor, and it is the heart of ``falsework run``. Per step: ``if`` → ``each`` → render input →
validate → run the action under a timeout → collect outputs → save the step's
state. A failed step fails the task, but later steps whose ``if`` asks for
``always()`` or ``failure()`` still run. A resumed task skips the steps a
previous attempt completed, restoring their outputs — except the steps whose
action only builds the workspace (``rebuilds_workspace``: fetch:*, fs:*,
catalog:write), which run again: the earlier attempt's workspace is gone (it
ran on another node, or was removed when the task failed), and the steps after
them need its files. A step whose ``if`` checks ``always()`` or ``failure()`` runs
again too: it reacts to the outcome of the attempt it belongs to.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from falsework.actions import Action, ActionContext, ActionRegistry, Workspace, example_output
from falsework.actions.context import Signal
from falsework.errors import (
    ActionSkipped,
    FalseworkError,
    InputError,
    LeaseLostError,
    StepTimeoutError,
    TaskFailedError,
    TemplateSecurityError,
)
from falsework.runner.deadlines import deadlines
from falsework.runner.idempotency import StepKeys
from falsework.runner.limits import RunLimits
from falsework.runner.redaction import Redactor
from falsework.taskio import TaskInput, TaskIO
from falsework.templating import MISSING, PLAIN, QUICK, Renderer, is_truthy
from falsework.templating.jsvalue import js_json, js_str
from falsework.types import JSONObject

if TYPE_CHECKING:
    from falsework.actions.rehearsal import Rehearsal

LEVEL_PREFIX = {
    "info": "\u001b[32minfo\u001b[39m: ",
    "warn": "\u001b[33mwarn\u001b[39m: ",
    "error": "\u001b[31merror\u001b[39m: ",
    "debug": "\u001b[34mdebug\u001b[39m: ",
}
STATUS_CHECK = re.compile(r"\b(always|failure)\s*\(\s*\)")

# Renders with expressions run in a pool of `render_threads` (RunLimits), never on
# the event loop (in `falsework serve` the API shares it: a render may take up to
# its time limit). Few threads: renders hold the GIL, so more would not go
# faster, each one competes with the event loop for it (8 renders at their limit:
# /healthz p99 16 ms with 1 thread, 66-102 with 2, 157-239 with 4), and each may
# hold a few times the output limit in memory. One pool per size per process.
_render_pools: dict[int, ThreadPoolExecutor] = {}
_render_pools_lock = threading.Lock()


def _pool(size: int) -> ThreadPoolExecutor:
    with _render_pools_lock:
        pool = _render_pools.get(size)
        if pool is None:
            pool = _render_pools[size] = ThreadPoolExecutor(
                size, thread_name_prefix="falsework-render"
            )
        return pool


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


# How long a thread's log lines may wait in the inbox before the loop takes them
# (while lines keep coming; a line after a quiet spell wakes the loop at once).
_LOG_WINDOW = 0.01
_INBOX_LOCK = threading.Lock()
# the redactor of every task without secrets (a no-op, holding nothing of a task)
_NO_SECRETS = Redactor({})


class _Emitter:
    """Writes a task's events in order. Log lines may come from any thread (file
    rendering runs in one); they are queued on the loop and drained by one task,
    so they stay in order and never block the action that logged them. That task
    is started at the loop's next turn, and only if the lines are still there: a
    step that logs and ends within one turn (a log step) has them written by its
    own flush, without a task. A thread's
    lines wait in an inbox: its first line wakes the loop, which takes the inbox
    whole and again at the end of a short window (``_LOG_WINDOW``) during which
    more lines wake nothing; any event the task emits first takes it too. A thread
    logging a line per file (fetch:template) wakes the loop at most once per
    window, not once per line (a self-pipe write and a GIL hand-over each).

    Every event is redacted, then each of its texts cut to ``max_log_line``; the
    action log lines of a task stop at ``max_task_log`` characters (one line
    says so, the rest are dropped)."""

    # A run waiting in a step holds one of these: no instance dict, and its two
    # queues made on first use (an empty deque costs 728 bytes; most steps log
    # nothing from a thread, many log nothing at all).
    __slots__ = (
        "_drainer",
        "_failure",
        "_inbox",
        "_inline",
        "_io",
        "_limits",
        "_log_left",
        "_loop",
        "_pending",
        "_redactor",
        "_redacts",
        "_starting",
        "_thread",
        "_woken",
    )

    def __init__(self, io: TaskIO, redactor: Redactor, limits: RunLimits) -> None:
        self._io = io
        self._redactor = redactor
        self._redacts = redactor.active  # a task without secrets skips the walk
        self._limits = limits
        self._log_left = limits.max_task_log
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._pending: deque[JSONObject] | None = None  # lines the drainer writes
        # lines logged by other threads (made by the first, never replaced)
        self._inbox: deque[JSONObject] | None = None
        self._woken = False  # a _take is scheduled on the loop
        self._drainer: asyncio.Task[None] | None = None
        self._starting = False  # a _start_drainer is scheduled on the loop
        self._inline = False  # flush is writing the pending lines itself
        self._failure: Exception | None = None  # what the drain could not write

    def _bound(self, body: JSONObject) -> JSONObject:
        # redacted before it is cut: a cut secret would no longer be recognised
        redacted: JSONObject = self._redactor.deep(body) if self._redacts else body
        limit = self._limits.max_log_line
        for value in redacted.values():
            # the type test first: an event's values are nearly all plain strings
            if (type(value) is str or isinstance(value, str)) and len(value) > limit:
                clip = self._limits.clip
                return {k: clip(v) if isinstance(v, str) else v for k, v in redacted.items()}
        return redacted

    async def emit(self, body: JSONObject, type: str = "log") -> None:
        if self._inbox:
            self._take_inbox()  # a thread's lines come before what follows them
        if self._pending or self._drainer is not None or self._failure is not None:
            await self.flush()
        await self._io.emit(self._bound(body), type)

    def sink(self, step_id: str) -> Any:
        def log(level: str, message: str) -> None:
            body = self._bound(
                {
                    "message": LEVEL_PREFIX.get(level, LEVEL_PREFIX["info"]) + message,
                    "stepId": step_id,
                }
            )
            if threading.get_ident() == self._thread:
                if self._inbox:
                    self._take_inbox()  # a thread's earlier lines first
                self._push(body)
                return
            # appended before the flag is read, and _settle clears the flag before
            # it reads the inbox: a line is always taken after it is appended
            inbox = self._inbox
            if inbox is None:
                with _INBOX_LOCK:  # two threads logging their task's first lines
                    if self._inbox is None:
                        self._inbox = deque()
                    inbox = self._inbox
            inbox.append(body)
            if not self._woken:
                self._woken = True
                self._loop.call_soon_threadsafe(self._take)

        return log

    def _take(self) -> None:
        self._take_inbox()
        self._loop.call_later(_LOG_WINDOW, self._settle)

    def _settle(self) -> None:
        self._woken = False
        self._take_inbox()

    def _take_inbox(self) -> None:
        inbox = self._inbox
        while inbox:
            self._push(inbox.popleft())

    def _push(self, body: JSONObject) -> None:
        size = len(str(body.get("message", "")))
        if size > self._log_left:
            if self._log_left < 0:
                return  # past the limit, already said
            self._log_left = -1
            limit = self._limits.max_task_log
            body = {
                "message": f"{LEVEL_PREFIX['warn']}the task's log reached the limit of "
                f"{limit:,} characters (max_task_log): its later lines are dropped",
                "stepId": body.get("stepId"),
            }
        else:
            self._log_left -= size
        if self._pending is None:
            self._pending = deque()
        self._pending.append(body)
        if self._drainer is None and not self._starting:
            self._starting = True
            self._loop.call_soon(self._start_drainer)

    def _start_drainer(self) -> None:
        self._starting = False
        pending = self._pending
        if pending and self._drainer is None and not self._inline:
            self._drainer = self._loop.create_task(self._drain(pending))

    async def _drain(self, pending: deque[JSONObject]) -> None:
        try:
            while pending:
                await self._io.emit(pending.popleft(), "log")
        except Exception as exc:
            # kept for the run's next emit or flush (which raise it), never left
            # in the task for asyncio to report as unretrieved
            pending.clear()
            self._failure = exc
        finally:
            self._drainer = None

    async def flush(self) -> None:
        if self._inbox:
            self._take_inbox()
        while self._drainer is not None:
            await asyncio.shield(self._drainer)
        pending = self._pending
        if pending and not self._inline:
            # lines no drainer took yet: written here, in order (a drainer
            # scheduled meanwhile finds them gone, or sees _inline and leaves
            # the ones pushed during these writes to this loop)
            self._inline = True
            try:
                await self._drain(pending)
            finally:
                self._inline = False
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure


class _StepFailed(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


@dataclass(frozen=True)
class DefaultEnvironment:
    """Backstage's ``scaffolder.defaultEnvironment``: ``environment.parameters``
    in every expression; ``environment.secrets`` in a step's input and ``each``
    only (empty in a dry run's actions, ``***`` in its log), redacted like a
    task's secrets."""

    parameters: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)


class WorkflowRunner:
    """Runs tasks' steps. One per process; safe to share between tasks."""

    def __init__(
        self,
        registry: ActionRegistry,
        renderer: Renderer,
        *,
        step_timeout: float = 3600.0,
        work_dir: Path = Path(".falsework/work"),
        keep_workspace_on_failure: bool = False,
        limits: RunLimits | None = None,
        environment: DefaultEnvironment | None = None,
    ) -> None:
        self.registry = registry
        self.environment = environment or DefaultEnvironment()
        self.renderer = renderer
        self.step_timeout = step_timeout
        # absolute: actions hand workspaces to child processes whose cwd is elsewhere
        self.work_dir = Path(os.path.abspath(work_dir))
        self.keep_workspace_on_failure = keep_workspace_on_failure
        self.limits = limits or RunLimits()
        # ``environment`` in every run's context, the same for all of them (the
        # sandbox cannot change a value it is shown): one copy, not one a task
        self._environment_context = {
            "parameters": dict(self.environment.parameters),
            "secrets": {},
        }

    def __call__(self, task: TaskInput, io: TaskIO) -> Coroutine[Any, Any, JSONObject]:
        return self.run(task, io)

    async def dry_run(
        self,
        template: Any,
        values: Mapping[str, Any],
        secrets: Mapping[str, str] | None = None,
        directory_contents: Sequence[Mapping[str, Any]] | None = None,
        *,
        user: Mapping[str, Any] | None = None,
        template_dir: Path | None = None,
        rehearsal: Rehearsal | None = None,
    ) -> JSONObject:
        """``POST /v2/dry-run``: see ``falsework.runner.dry_run``."""
        from falsework.runner.dry_run import dry_run

        return await dry_run(
            self,
            template,
            values,
            secrets,
            directory_contents,
            user=user,
            template_dir=template_dir,
            rehearsal=rehearsal,
        )

    def run(
        self,
        task: TaskInput,
        io: TaskIO,
        *,
        workspace: Path | None = None,
        dry_run: bool = False,
        rehearsal: Rehearsal | None = None,
    ) -> Coroutine[Any, Any, JSONObject]:
        """Run ``task``; return its rendered ``spec.output`` (a coroutine: one
        frame for the whole run, however many a waiting task holds).

        ``workspace``: use this folder and never remove it (``falsework run``,
        dry runs); by default ``work_dir/<task id>`` (``<task id>.<attempt>`` from
        the second attempt on, so a stale run of an earlier attempt on this host
        never shares it), removed at the end.
        Raises ``TaskFailedError`` (redacted) when a step failed. ``rehearsal``
        (with ``dry_run``): recorders stand in for side-effecting actions and
        record what they would do (``falsework.actions.rehearsal``).
        """
        return _TaskRun.execute(self, task, io, workspace, dry_run, rehearsal if dry_run else None)

    def _remove_earlier_workspaces(self, task_id: str, attempt: int) -> None:
        for earlier in range(1, attempt):
            shutil.rmtree(self.work_dir / workspace_name(task_id, earlier), ignore_errors=True)

    async def render(self, value: Any, context: Mapping[str, Any]) -> Any:
        """``renderer.render``: inline when it is quick (nothing to render, or only
        already-compiled expressions linear in their data: lookups, operators,
        linear filters), in the render threads otherwise (loops, calls, regular
        expressions, a first compile), so the event loop never waits on a render
        that could run to its time limit."""
        renderer = self.renderer
        quickness = renderer.quickness(value)  # one walk, not two
        if quickness == PLAIN:
            return renderer.render(value, context, plain=True)
        if quickness == QUICK:
            return renderer.render(value, context)
        return await self._off_loop(renderer.render, value, context)

    async def _off_loop(self, call: Callable[..., Any], *args: Any) -> Any:
        pool = _pool(self.limits.render_threads)
        return await asyncio.get_running_loop().run_in_executor(pool, call, *args)

    async def _input(
        self, action: Action[Any], step: JSONObject, step_id: str, context: Mapping[str, Any]
    ) -> Any:
        raw = step.get("input") or {}
        if not isinstance(raw, dict):
            raise InputError(f"Step {step_id}: input must be an object, not {type(raw).__name__}")
        verbatim = action.raw_input
        kept = {k: v for k, v in raw.items() if k in verbatim} if verbatim else {}
        todo = {k: v for k, v in raw.items() if k not in verbatim} if kept else raw
        rendered = await self.render(todo, context) if todo else {}
        # An expression that rendered to nothing means "not given" (Backstage drops
        # undefined values), so defaults apply.
        values = {k: v for k, v in (rendered or {}).items() if v is not None}
        values.update(kept)
        try:
            return action.input_model.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"input.{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InputError(f"Invalid input to step {step_id} ({action.id}): {problems}") from None

    async def _condition(self, condition: Any, context: Mapping[str, Any]) -> bool:
        if isinstance(condition, bool):
            return condition
        if isinstance(condition, str):
            return is_truthy(await self.render(condition, context))
        return is_truthy(condition)

    async def _output(self, spec_output: JSONObject, context: Mapping[str, Any]) -> JSONObject:
        if self.renderer.renders_quickly(spec_output):
            return self._output_now(spec_output, context)
        result: JSONObject = await self._off_loop(self._output_now, spec_output, context)
        return result

    def _output_now(self, spec_output: JSONObject, context: Mapping[str, Any]) -> JSONObject:
        result: JSONObject = {}
        for key, value in spec_output.items():
            if key in ("links", "text") and isinstance(value, list):
                items = []
                for item in value:
                    if isinstance(item, dict) and "if" in item:
                        condition = item["if"]
                        if isinstance(condition, str):
                            condition = self.renderer.evaluate(condition, context)
                        if not is_truthy(condition):
                            continue
                        item = {k: v for k, v in item.items() if k != "if"}
                    items.append(self.renderer.render(item, context))
                result[key] = items
            else:
                rendered = self.renderer.render(value, context, missing=MISSING)
                if rendered is not MISSING:  # an undefined value leaves its key out
                    result[key] = rendered
        # each value kept to the output limit; the whole of them too
        if _text_size(result, self.renderer.max_output) > self.renderer.max_output:
            raise TemplateSecurityError(
                f"spec.output holds more than the limit of {self.renderer.max_output:,} characters"
            )
        return result


def workspace_name(task_id: str, attempt: int) -> str:
    """A task's workspace folder under ``work_dir``: ``<id>`` for its first
    attempt (and for 0, the engine's "never claimed"), ``<id>.<attempt>`` after."""
    return task_id if attempt <= 1 else f"{task_id}.{attempt}"


class _TaskRun:
    """The state of one run of one task: its context, events and workspace."""

    __slots__ = (
        "cancelled",
        "context",
        "dry_run",
        "emitter",
        "failed",
        "io",
        "kept_workspace",
        "keys",
        "redactor",
        "rehearsal",
        "runner",
        "task",
        "template_dir",
        "template_ref",
        "ws",
    )

    def __init__(
        self,
        runner: WorkflowRunner,
        task: TaskInput,
        io: TaskIO,
        workspace: Path | None,
        dry_run: bool,
        rehearsal: Rehearsal | None = None,
    ) -> None:
        self.runner = runner
        self.task = task
        self.io = io
        self.dry_run = dry_run
        self.rehearsal = rehearsal
        environment = runner.environment
        if environment.secrets or task.secrets:
            self.redactor = Redactor(
                {**{f"environment.{k}": v for k, v in environment.secrets.items()}, **task.secrets}
            )
        else:
            self.redactor = _NO_SECRETS
        self.emitter = _Emitter(io, self.redactor, runner.limits)
        # a caller's own folder (falsework run, dry runs) outlives the attempt
        self.kept_workspace = workspace is not None
        if workspace is not None:
            # absolute: actions hand it to child processes whose cwd is elsewhere
            self.ws = Workspace(Path(os.path.abspath(workspace)))
        else:
            self.ws = Workspace(runner.work_dir, workspace_name(task.id, task.attempt))
        spec = task.spec
        user = spec.get("user") or {}
        self.context: dict[str, Any] = {
            "parameters": spec.get("parameters") or {},
            "steps": {},
            "user": {"entity": user.get("entity"), "ref": user.get("ref")},
            "context": {"task": {"id": task.id, "attempt": task.attempt}},
            "environment": runner._environment_context,
            "__status": "ok",
        }
        info = spec.get("templateInfo")
        self.template_dir = _template_dir(info) if info else None
        self.template_ref = _template_ref(info) if info else None
        self.keys = StepKeys(io, task.id, task.attempt, task.checkpoints)
        self.failed = False
        self.cancelled = False

    @classmethod
    async def execute(
        cls,
        runner: WorkflowRunner,
        task: TaskInput,
        io: TaskIO,
        workspace: Path | None,
        dry_run: bool,
        rehearsal: Rehearsal | None,
    ) -> JSONObject:
        """``WorkflowRunner.run``: the run's whole life in one coroutine."""
        run = cls(runner, task, io, workspace, dry_run, rehearsal)
        if workspace is None and task.attempt > 1 and not runner.keep_workspace_on_failure:
            # what earlier attempts left on this host (a crashed worker removes nothing)
            await asyncio.to_thread(runner._remove_earlier_workspaces, task.id, task.attempt)
        try:
            spec = task.spec
            steps: list[JSONObject] = list(spec.get("steps") or [])
            first_failure: _StepFailed | None = None
            await run.emitter.emit({"message": f"Starting up task with {len(steps)} steps"})
            for index, step in enumerate(steps):
                step_id = str(step.get("id") or f"step-{index + 1}")
                try:
                    await run.step(step, step_id)
                except _StepFailed as exc:
                    first_failure = first_failure or exc
                    run.failed = True
                    run.context["__status"] = "failed"
            if first_failure is not None:
                raise TaskFailedError(first_failure.message, first_failure.name)
            spec_output = spec.get("output")
            try:
                # most templates have no output: nothing to render, nothing to size
                output = await runner._output(spec_output, run.context) if spec_output else {}
            except FalseworkError as exc:
                message = run.redactor.text(exc.message)
                raise TaskFailedError(f"spec.output: {message}", exc.name) from None
            await run.emitter.flush()
            return run.redactor.deep(output)  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            run.cancelled = True
            raise
        finally:
            if workspace is None and run.ws.created:
                keep = run.failed and not run.cancelled and runner.keep_workspace_on_failure
                if not keep:
                    await asyncio.shield(asyncio.to_thread(shutil.rmtree, run.ws.path, True))

    def _rebuilds_workspace(self, step: JSONObject) -> bool:
        """Whether a step completed by an earlier attempt runs again (see the
        module's docstring); never with a workspace the caller keeps."""
        if self.kept_workspace:
            return False
        try:
            action = self.runner.registry.get(str(step.get("action", "")))
        except FalseworkError:
            return False
        return action.rebuilds_workspace

    async def _mark(self, step_id: str, message: str, state: JSONObject) -> None:
        await self.emitter.emit({"message": message, "stepId": step_id, "status": state["status"]})
        await self.io.save_step(step_id, state)

    async def step(self, step: JSONObject, step_id: str) -> None:
        runner, emitter = self.runner, self.emitter
        name = str(step.get("name") or step.get("action") or step_id)
        saved = self.task.step_state.get(step_id) if self.task.step_state else None
        condition = step.get("if", True)
        checks_status = isinstance(condition, str) and STATUS_CHECK.search(condition) is not None
        if saved and saved.get("status") == "completed":
            if self._rebuilds_workspace(step):
                await emitter.emit(
                    {
                        "message": f"Running step {name} again: an earlier attempt completed "
                        "it, and this attempt's workspace needs its files",
                        "stepId": step_id,
                    }
                )
            elif checks_status:
                # always() / failure(): a clean-up step belongs to each attempt, whose
                # outcome it reacts to; its run for an earlier attempt does not count
                await emitter.emit(
                    {
                        "message": f"Running step {name} again: its if checks this "
                        "attempt's outcome",
                        "stepId": step_id,
                    }
                )
            else:
                self.context["steps"][step_id] = {"output": saved.get("output") or {}}
                await emitter.emit(
                    {
                        "message": f"Skipping step {name}: completed by an earlier attempt",
                        "stepId": step_id,
                        "status": "completed",
                    }
                )
                return
        if self.failed and not checks_status:
            message = f"Skipping step {step_id} because an earlier step failed"
            await self._mark(step_id, message, {"status": "skipped"})
            return
        await emitter.emit(
            {"message": f"Beginning step {name}", "stepId": step_id, "status": "processing"}
        )
        signal = Signal()
        completed = False
        try:
            # With `each`, as in Backstage, `if` is tested for each item (with `each`
            # in view) unless it is plainly false.
            per_item = "each" in step and condition is not False
            if not per_item and not await runner._condition(condition, self.context):
                message = f"Skipping step {step_id} because its if condition was false"
                await self._mark(step_id, message, {"status": "skipped"})
                return
            action = runner.registry.get(str(step.get("action", "")))
            timeout = _timeout(step.get("timeout"), runner.step_timeout, step_id)
            output: dict[str, Any] = {}
            if self.dry_run and await self._skips_dry_run(step, step_id, action, output):
                # Backstage's one event for it: no "Finished step" follows
                self.context["steps"][step_id] = {"output": output}
                message = f"Skipping because {action.id} does not support dry-run"
                await self._mark(
                    step_id, message, {"status": "skipped", "output": self.redactor.deep(output)}
                )
                return
            # the step's timeout on its loop's one timer (runner/deadlines.py)
            scope = asyncio.Timeout(None)  # = asyncio.timeout(None), one call less
            try:
                async with scope:
                    clock = deadlines()
                    deadline = clock.add(timeout, scope)
                    try:
                        await self._iterations(step, step_id, action, output, signal)
                    finally:
                        clock.discard(deadline)
            except TimeoutError:
                if scope.expired():
                    signal.set()
                    raise StepTimeoutError(
                        f"Step {step_id} ({name}) timed out after {timeout:g} seconds"
                    ) from None
                raise
            self.context["steps"][step_id] = {"output": output}
            await emitter.flush()
            saved_output = self.redactor.deep(output)
            await self.io.save_step(step_id, {"status": "completed", "output": saved_output})
            completed = True
            await self.keys.spend(step_id)
            await emitter.emit(
                {"message": f"Finished step {name}", "stepId": step_id, "status": "completed"}
            )
        except asyncio.CancelledError:
            signal.set()
            if not completed:
                message = f"Step {step_id} has been cancelled."
                await self._mark(step_id, message, {"status": "cancelled"})
            # else it completed, and its state and spent key are on their way
            # together: a "cancelled" state after them would have a later run
            # repeat it with a new key
            raise
        except LeaseLostError:
            raise  # the task is no longer ours: nothing more may be written for it
        except ActionSkipped as exc:
            # The action chose not to act (and said why): a warning, never silence.
            self.emitter.sink(step_id)("warn", self.redactor.text(exc.message))
            await emitter.flush()
            self.context["steps"][step_id] = {"output": {}}
            message = f"Skipping step {step_id}: {self.redactor.text(exc.message)}"
            await self._mark(step_id, message, {"status": "skipped"})
            await self.keys.spend(step_id)
        except Exception as exc:
            err_name = exc.name if isinstance(exc, FalseworkError) else type(exc).__name__
            message = runner.limits.clip(self.redactor.text(_message(exc)))
            error = {"name": err_name, "message": message}
            await self._mark(
                step_id, f"{err_name}: {message}", {"status": "failed", "error": error}
            )
            await self.keys.spend(step_id)
            raise _StepFailed(err_name, message) from exc

    async def _skips_dry_run(
        self, step: JSONObject, step_id: str, action: Action[Any], output: dict[str, Any]
    ) -> bool:
        """In a dry run, log the step's input as Backstage does (its one place to
        show what each step received), then whether the action cannot dry-run:
        then ``output`` gets outputs faked from its output schema, and a
        rehearsal records each call with its validated input (Backstage
        validates nothing it skips; a rehearsal is stricter)."""
        runner = self.runner
        masked = self._secret_context(mask=True)
        raw = step.get("input") or {}
        shown: Any = raw
        if isinstance(raw, dict):
            rendered = await runner.render(
                {k: v for k, v in raw.items() if k not in action.raw_input}, masked
            )
            shown = {  # in the template's order, as Backstage's render keeps it
                k: raw[k] if k in action.raw_input else rendered[k]
                for k in raw
                if k in action.raw_input or k in rendered
            }
        self.emitter.sink(step_id)(
            "info",
            f"Running {action.id} in dry-run mode with inputs (secrets redacted): "
            + js_json(shown, 2),
        )
        records = self.rehearsal is not None and action.recorder is not None
        if action.supports_dry_run or records:
            return False
        if self.rehearsal is not None:
            secret_context = self._secret_context()
            for position, each in enumerate(await self._each(step, step_id, secret_context)):
                scope = step_id if each is None else f"{step_id}[{position}]"
                render_context = (
                    secret_context if each is None else {**secret_context, "each": each}
                )
                validated = await runner._input(action, step, step_id, render_context)
                self.rehearsal.record(scope, action.id, self._shown(validated))
        schema = action.output_schema if action.dry_run_output is None else action.dry_run_output
        faked = example_output(schema)
        output.update(faked if isinstance(faked, dict) else {})
        return True

    def _secret_context(self, *, mask: bool = False) -> dict[str, Any]:
        """The context of a step's input and ``each``: with the task's secrets
        and the default environment's (none for a dry run's actions, as in
        Backstage; ``mask``: every one ``***``, for the dry-run log)."""
        environment = self.runner.environment
        if mask:
            secrets = {key: "***" for key in self.task.secrets}
            env_secrets = {key: "***" for key in environment.secrets}
        else:
            secrets = dict(self.task.secrets)
            env_secrets = {} if self.dry_run else dict(environment.secrets)
        return {
            **self.context,
            "secrets": secrets,
            "environment": {"parameters": dict(environment.parameters), "secrets": env_secrets},
        }

    async def _each(
        self, step: JSONObject, step_id: str, context: Mapping[str, Any]
    ) -> list[dict[str, Any] | None]:
        if "each" not in step:
            return [None]
        items = await self.runner.render(step["each"], context)
        return _each_items(items, step_id, self.runner.limits)

    async def _iterations(
        self,
        step: JSONObject,
        step_id: str,
        action: Action[Any],
        output: dict[str, Any],
        signal: Signal,
    ) -> None:
        runner, task, context = self.runner, self.task, self.context
        log = self.emitter.sink(step_id)
        wants_key = _mentions_step_key(step.get("input"))
        items = (
            await self._each(step, step_id, self._secret_context()) if "each" in step else [None]
        )
        for position, each in enumerate(items):
            scope = step_id if each is None else f"{step_id}[{position}]"
            # made again for each item, and let go before the action runs: a
            # waiting action holds no copy of the context with the secrets
            render_context = self._secret_context()
            if each is not None:
                render_context["each"] = each
            if wants_key:
                # ${{ context.step.idempotencyKey }}: issued (and stored) only for
                # the steps whose input asks for it
                key = (await self.keys.key(step_id, scope)).value
                render_context["context"] = {
                    **context["context"],
                    "step": {"id": scope, "idempotencyKey": key},
                }
            if each is not None:
                shown = _each_shown(each)
                if "if" in step and not await runner._condition(step["if"], render_context):
                    log("info", f"Skipping step each: {shown}")
                    continue
                log("info", f"Running step each: {shown}")

            def collect(key: str, value: Any, _many: bool = each is not None) -> None:
                if _many:
                    output.setdefault(key, []).append(value)
                else:
                    output[key] = value

            validated = await runner._input(action, step, step_id, render_context)
            del render_context
            records = self.rehearsal is not None and action.recorder is not None
            public_context = {**context, "each": each} if each is not None else context
            ctx: ActionContext[Any] = ActionContext(
                input=validated,
                log=log,
                workspace=self.ws,
                secrets=dict(task.secrets),
                user=context["user"],
                task_id=task.id,
                step_id=scope,
                checkpoints=self.io,
                renderer=runner.renderer,
                output=collect,
                is_dry_run=self.dry_run,
                template_dir=self.template_dir,
                signal=signal,
                template_context=public_context,
                template_ref=self.template_ref,
                recording=(
                    self.rehearsal.record(scope, action.id, self._shown(validated))
                    if self.rehearsal is not None and records
                    else None
                ),
                idempotency=functools.partial(self.keys.key, step_id, scope),
            )
            try:
                await action.run(ctx)
            finally:
                await ctx.aclose()

    def _shown(self, validated: Any) -> JSONObject:
        """A step's input as a rehearsal records it: as given (defaults left
        out), JSON, secrets masked."""
        data = validated.model_dump(by_alias=True, exclude_unset=True, mode="json")
        shown: JSONObject = self.redactor.deep(data)
        return shown


def _mentions_step_key(value: Any) -> bool:
    """Whether a step's input refers to ``context.step`` (its idempotency key)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)  # exact types first: a spec is decoded JSON
        if kind is str or (kind is not dict and kind is not list and isinstance(item, str)):
            if "context.step" in item:
                return True
        elif kind is dict or isinstance(item, dict):
            stack.extend(item.values())
        elif kind is list or isinstance(item, list):
            stack.extend(item)
    return False


def _text_size(value: Any, limit: int) -> int:
    """The characters of the strings and keys in a JSON-like value, counted until
    past ``limit``."""
    size = 0
    stack = [value]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item)
        elif isinstance(item, dict):
            size += sum(len(str(k)) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            size += 8
    return size


def _message(exc: BaseException) -> str:
    if isinstance(exc, FalseworkError):
        return exc.message or exc.name
    return str(exc) or type(exc).__name__


def _each_shown(each: Mapping[str, Any]) -> str:
    """An item of `each` as Backstage logs it: its key, and its value as
    JavaScript's String() prints it (a list joined by commas, an object
    ``[object Object]``)."""

    def text(value: Any) -> str:
        if isinstance(value, list | tuple):
            return ",".join("" if item is None else text(item) for item in value)
        if isinstance(value, Mapping):
            return "[object Object]"
        return "null" if value is None else js_str(value)

    shown = {"key": text(each["key"]), "value": text(each["value"])}
    return json.dumps(shown, separators=(",", ":"), ensure_ascii=False)


def _each_items(value: Any, step_id: str, limits: RunLimits) -> list[dict[str, Any] | None]:
    if isinstance(value, list | dict) and len(value) > limits.max_each:
        raise InputError(
            f"Step {step_id}: each has {len(value):,} items, over the limit of "
            f"{limits.max_each:,} (the max_each setting)"
        )
    if isinstance(value, list):
        return [{"key": str(i), "value": v} for i, v in enumerate(value)]
    if isinstance(value, dict):
        return [{"key": k, "value": v} for k, v in value.items()]
    raise InputError(
        f"Step {step_id}: each must be a list or an object, not {type(value).__name__}"
    )


def _timeout(value: Any, default: float, step_id: str) -> float:
    if value is None:
        return default
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = DURATION.match(str(value)) if isinstance(value, str) else None
    if match:
        unit = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
        seconds = float(match.group(1)) * unit
        if seconds > 0:
            return seconds
    raise InputError(
        f"Step {step_id}: timeout {value!r} is not a positive duration (30, '30s', '5m')"
    )


def _template_ref(info: JSONObject) -> str | None:
    """``spec.templateInfo.entityRef``, when it is a non-empty string."""
    ref = info.get("entityRef")
    return ref if isinstance(ref, str) and ref else None


def _template_dir(info: JSONObject) -> Path | None:
    """The template's folder, from a ``file:`` ``spec.templateInfo.baseUrl``."""
    base = info.get("baseUrl")
    if not isinstance(base, str) or not base.startswith("file:"):
        return None
    return _template_dir_of(base)


@functools.lru_cache(maxsize=256)
def _template_dir_of(base: str) -> Path:
    path = Path(unquote(urlsplit(base).path))
    return path if base.endswith("/") else path.parent
