"""Dry-runs in child processes, bounded in time and memory.

``POST /v2/dry-run`` runs a template the API has not vetted: rendering, schema
checks and actions that may take all the CPU and memory they can. They run in a
small pool of child processes (pebble's ``ProcessPool``), not threads, because a
child

- can be killed: at its time limit, or when the client goes away (a thread
  cannot be stopped from outside);
- has its own address-space limit (``RLIMIT_AS``), so an allocation that would
  exhaust the machine fails in the child as a ``MemoryError``, which ends the
  child; the parent answers with a clear error and the pool starts a fresh one;
- runs under its own GIL: the API's event loop keeps answering however hard the
  child computes.

The pool is bounded: ``workers`` children, ``queue`` dry-runs waiting for one;
beyond that ``run`` refuses at once (429). A result comes back as JSON bytes,
encoded and size-checked in the child, so the API never decodes a big result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import multiprocessing
import os
import re
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from falsework.errors import FalseworkError, TooManyRequestsError

if TYPE_CHECKING:
    import pebble

    from falsework.runner.workflow import WorkflowRunner

log = logging.getLogger("falsework.runner.isolation")

# A child that ran out of memory exits with this code (EX_TEMPFAIL): the parent
# tells the caller so, and pebble starts a fresh child in its place.
MEMORY_EXIT = 75


class DryRunLimitError(FalseworkError):
    """The dry-run went over one of the server's limits and was stopped."""

    status_code = 422


@dataclass(frozen=True)
class DryRunJob:
    """What a child needs to run one dry-run (pickled to it)."""

    template: dict[str, Any]  # the template document
    values: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)  # directoryContents
    user: dict[str, Any] = field(default_factory=dict)
    # A catalog template's own folder; None: the folder is ``files``.
    template_dir: str | None = None
    # The request's ``rehearsal`` (seed, user, http answers); None: a plain dry run.
    rehearsal: dict[str, Any] | None = None


class DryRunPool:
    """Runs :class:`DryRunJob` s in at most ``workers`` children at once."""

    def __init__(
        self,
        make_runner: Callable[[], WorkflowRunner],
        *,
        workers: int,
        queue: int,
        timeout: float,
        memory_mb: int,
        max_result: int,
    ) -> None:
        self.make_runner = make_runner
        self.workers = workers
        self.queue = queue
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_result = max_result
        self._pool: pebble.ProcessPool | None = None
        self._pending = 0

    @property
    def pending(self) -> int:
        """Dry-runs running or waiting for a child."""
        return self._pending

    def _started(self) -> pebble.ProcessPool:
        if self._pool is None:
            import pebble

            # Children are forked from a fresh server process, never from this one
            # (its threads may hold locks a fork would copy held).
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            self._pool = pebble.ProcessPool(
                max_workers=self.workers,
                initializer=_start_child,
                initargs=(self.make_runner, self.memory_mb),
                context=context,
            )
        return self._pool

    async def run(self, job: DryRunJob) -> DryRunOutcome:
        """The dry-run's result as JSON, and the name of the error that failed it
        (a plain dry run's; a rehearsal reports its failures in the result only);
        raises what the dry-run raised (an error reaching a user),
        ``DryRunLimitError`` past a limit, 429 when full."""
        if self._pending >= self.workers + self.queue:
            raise TooManyRequestsError(
                f"The server is running {self._pending} dry-runs, as many as it takes at "
                "once (dry_run_workers + dry_run_queue); try again shortly.",
                retry_after=min(self.timeout, 10.0),
            )
        self._pending += 1
        try:
            # In a thread: the first call starts the fork server and the children,
            # which takes a moment the event loop must not wait for.
            future = await asyncio.to_thread(
                self._started().schedule,
                run_in_child,
                args=(job, self.max_result),
                timeout=self.timeout,
            )
            # Cancelling the awaiting task (the client went away) cancels the
            # future, and pebble then kills the child running it.
            outcome = await asyncio.wrap_future(future)
        except concurrent.futures.TimeoutError:
            raise DryRunLimitError(
                f"The dry-run ran longer than {self.timeout:g} seconds (dry_run_timeout) "
                "and was stopped."
            ) from None
        except OSError as exc:  # pebble.ProcessExpired: the child died
            raise self._expired(exc) from None
        finally:
            self._pending -= 1
        return _unpack(outcome)

    def _expired(self, exc: OSError) -> FalseworkError:
        code = getattr(exc, "exitcode", None)
        if code == MEMORY_EXIT:
            return DryRunLimitError(
                f"The dry-run needed more than {self.memory_mb} MiB of memory "
                "(dry_run_memory_mb) and was stopped."
            )
        log.warning("a dry-run child ended unexpectedly: %s (exit code %s)", exc, code)
        return DryRunLimitError(
            f"The dry-run's process ended unexpectedly (exit code {code}); "
            "it may have gone over a limit of the server."
        )

    async def close(self) -> None:
        """Stop every child (running dry-runs fail) and wait for them."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        pool.stop()  # type: ignore[no-untyped-call]
        with contextlib.suppress(Exception):
            await asyncio.to_thread(pool.join, 10)


class DryRunOutcome(NamedTuple):
    data: bytes  # the result, JSON
    failed: str | None  # the name of the error a step failed with


def _unpack(outcome: tuple[Any, ...]) -> DryRunOutcome:
    if outcome[0] == "ok":
        return DryRunOutcome(outcome[1], outcome[2])
    _, name, status, message, field_errors = outcome
    raise ChildError(name, status, message, field_errors)


class ChildError(FalseworkError):
    """An error a dry-run raised in its child, with its name and status."""

    def __init__(
        self, name: str, status: int, message: str, errors: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self._name = name
        self.status_code = status
        if errors is not None:
            self.errors = errors  # the API answers 400 {errors: [...]} with these

    @property
    def name(self) -> str:
        return self._name


# -- in the child ---------------------------------------------------------------

_RUNNER: WorkflowRunner | None = None
_BUSY = False  # a dry-run is running in this child


class _Terminated(BaseException):
    """SIGTERM arrived during a dry-run (a BaseException: nothing may catch it)."""


def _start_child(make_runner: Callable[[], WorkflowRunner], memory_mb: int) -> None:
    """pebble's initializer: build the runner once, then cap the address space."""
    global _RUNNER
    # The server stops its children; Ctrl-C in a terminal reaches the whole group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM (pebble's kill) unwinds asyncio.run, so running git processes are
    # killed by their own cancellation before the child goes.
    signal.signal(signal.SIGTERM, _exit_on_term)
    # Like every task on a server, a dry-run reads local sources only from its own
    # template folder (the server's runner: falsework.wiring.workflow_runner).
    _RUNNER = make_runner()
    _few_malloc_arenas()
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _exit_on_term(signum: int, frame: Any) -> None:
    if not _BUSY:
        os._exit(128 + signum)
    # Unwinds asyncio.run (cancelling the dry-run, which kills its git processes);
    # run_in_child then exits. pebble would catch a SystemExit and carry on.
    raise _Terminated


def _few_malloc_arenas() -> None:
    """glibc reserves 64 MiB of address space per thread's malloc arena: with
    RLIMIT_AS that would count against the limit for nothing."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-8, 1)  # M_ARENA_MAX


def run_in_child(job: DryRunJob, max_result: int) -> tuple[Any, ...]:
    """One dry-run, in a child: ``("ok", json bytes, failing error's name or None)``
    or ``("error", name, status, message, field errors)``; a MemoryError ends the
    child (``MEMORY_EXIT``)."""
    global _BUSY
    _BUSY = True
    try:
        result = asyncio.run(_dry_run(job))
        data = json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode()
        data = hide_paths(data, job.template_dir)
        if len(data) > max_result:
            raise DryRunLimitError(
                f"The dry-run's result is {len(data) / 1e6:.1f} MB, over the limit of "
                f"{max_result / 1e6:.1f} MB (dry_run_max_result): write fewer or smaller "
                "files, or log less."
            )
        error = result.get("error") if job.rehearsal is None else None
        return ("ok", data, error["name"] if isinstance(error, dict) else None)
    except MemoryError:
        os._exit(MEMORY_EXIT)
    except _Terminated:
        os._exit(128 + signal.SIGTERM)
    except FalseworkError as exc:
        return ("error", exc.name, exc.status_code, exc.message, getattr(exc, "errors", None))
    except OSError as exc:
        # Writing the uploaded files failed (a name too long for the file system...).
        name = os.path.basename(str(exc.filename or ""))[:80]
        where = f" ({name})" if name else ""
        reason = exc.strerror or type(exc).__name__
        message = f"directoryContents: a file could not be written{where}: {reason}"
        return ("error", "InputError", 400, message, None)
    except Exception as exc:
        log.exception("a dry-run failed")
        return ("error", "Error", 500, f"The dry-run failed: {type(exc).__name__}", None)
    finally:
        _BUSY = False


_DRY_RUN_ROOT = re.compile(
    re.escape(tempfile.gettempdir().encode())
    + rb"/falsework-dry-run-[A-Za-z0-9_]+/(workspace|template)"
)


def hide_paths(data: bytes, template_dir: str | None) -> bytes:
    """The server's folders in log lines (``Template result written to …``) as
    names: the workspace is ``.``, the template folder ``<template>``."""
    data = _DRY_RUN_ROOT.sub(lambda m: b"." if m[1] == b"workspace" else b"<template>", data)
    if template_dir:
        encoded = json.dumps(template_dir, ensure_ascii=False)[1:-1].encode()
        data = data.replace(encoded, b"<template>")
    return data


async def _dry_run(job: DryRunJob) -> Any:
    from falsework.actions.rehearsal import Rehearsal
    from falsework.templates import Template
    from falsework.templates.values import validate_values

    assert _RUNNER is not None, "the child was not initialised"
    # Two threads for file work: every thread costs address space under RLIMIT_AS.
    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    where = Path(job.template_dir) if job.template_dir else Path("dry-run")
    template = Template.from_document(job.template, where / "template.yaml")
    values = validate_values(template, job.values)
    template_dir = Path(job.template_dir) if job.template_dir else None
    rehearsal = Rehearsal.from_json(job.rehearsal) if job.rehearsal is not None else None
    return await _RUNNER.dry_run(
        job.template,
        values,
        job.secrets,
        job.files,
        user=job.user,
        template_dir=template_dir,
        rehearsal=rehearsal,
    )
