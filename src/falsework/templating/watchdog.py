"""A time limit for template rendering.

Jinja compiles a template to plain Python, so a loop over a large range runs in
the caller's thread with nothing to stop it. One daemon thread watches every
render in progress and, past its deadline, raises :class:`RenderTimeout` inside
the rendering thread (``PyThreadState_SetAsyncExc``). That works because
rendering is bytecode; the few C calls that could run long on their own
(``'a' * n``, ``join``, ``replace`` ...) are size-checked before they run, and a
regular-expression match has its own time limit: it runs in an
:meth:`Watchdog.uninterruptible` section, so that its own timeout, not the
render's, decides what the error says (an exception raised into the thread
could only arrive after the C call anyway).

An exception raised into a thread may still be pending when its render ends.
:meth:`Watchdog.stop` then swaps in a marker exception and takes it at once
(:func:`_defuse`) rather than clearing it with ``SetAsyncExc(id, NULL)``: up to
CPython 3.12 that call sets the interpreter-wide "async exception pending" flag
with nothing to deliver, and only a delivered exception clears it. With the flag
stuck, every thread runs the interpreter's slow path at each call and loop, and
a thread under a tracer (coverage, a debugger, a profiler) spins forever on its
next call: the traced path re-checks the flag before the call and never gets
past it (the second timed-out render of a thread hung the tests under
``--cov``). The marker, once delivered, leaves the flag down.
"""

from __future__ import annotations

import itertools
import threading
import time
from types import TracebackType

_POLL = 0.05  # how late a deadline may be noticed
_IDLE_EXIT = 5.0  # the thread ends after this long with nothing to watch
_DEFUSE_CALLS = 1000  # calls that must take the marker (CPython takes it on the first)


class RenderTimeout(BaseException):
    """Raised inside a render that ran past its time limit.

    A BaseException so that no ``except Exception`` on the way (Jinja's, a
    filter's) swallows it.
    """


def _load() -> None:
    """Imports ctypes, which raising into a thread needs: late, because most
    processes never stop a render (ctypes costs their start), but before a
    deadline (see Watchdog._run), never while the watchdog's lock is held."""
    import ctypes  # noqa: F401


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    import ctypes  # loaded by then (_load): a lookup

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )


class _Defused(BaseException):
    """The marker :func:`_defuse` raises into its own thread and catches."""


def _checkpoint() -> None:
    """An empty call: entering a function is where the interpreter delivers a
    pending asynchronous exception."""


def _defuse() -> None:
    """Cancels an exception the watchdog may have raised into this thread that
    has not arrived yet, leaving nothing pending and the interpreter's flag down."""
    thread_id = threading.get_ident()
    try:
        _raise_in(thread_id, _Defused)  # replaces a pending RenderTimeout, if any
        for _ in range(_DEFUSE_CALLS):
            _checkpoint()
    except _Defused:
        return
    # Not delivered (an interpreter that checks elsewhere): at least nothing may
    # surface later in unrelated code.
    _raise_in(thread_id, None)


class Watchdog:
    """Tracks running renders; :meth:`start` / :meth:`stop` bracket each one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, tuple[float, int]] = {}
        self._fired: set[int] = set()
        self._held: set[int] = set()  # threads inside an uninterruptible section
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float) -> int:
        token = next(self._tokens)
        deadline = time.monotonic() + timeout
        with self._lock:
            self._active[token] = (deadline, threading.get_ident())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="falsework-render-watchdog", daemon=True
                )
                self._thread.start()
        return token

    def stop(self, token: int) -> None:
        """Ends the watch of ``token``; called in the thread that rendered."""
        while True:
            try:
                with self._lock:
                    self._active.pop(token, None)
                    if token in self._fired:
                        # The exception may still be pending: cancel it so it
                        # cannot surface later in unrelated code. Under the lock,
                        # so that no other deadline of this thread fires meanwhile.
                        _defuse()
                        self._fired.discard(token)
                return
            except RenderTimeout:
                # Delivered between the render's end and here: the render
                # finished, and the exception is taken. Once more, to tidy up.
                continue

    def uninterruptible(self) -> _Section:
        """A section (``with``) the watchdog does not interrupt; leaving it past a
        deadline raises :class:`RenderTimeout` then, unless an exception is
        already on its way out."""
        return _Section(self)

    def _hold(self) -> None:
        with self._lock:
            self._held.add(threading.get_ident())

    def _release(self, raising: bool) -> None:
        thread_id = threading.get_ident()
        now = time.monotonic()
        with self._lock:
            self._held.discard(thread_id)
            late = [
                token
                for token, (deadline, owner) in self._active.items()
                if owner == thread_id and deadline <= now and token not in self._fired
            ]
            if late and not raising:
                self._fired.update(late)
        if late and not raising:
            raise RenderTimeout

    def _run(self) -> None:
        idle_since = time.monotonic()
        loaded = False
        while True:
            time.sleep(_POLL)
            now = time.monotonic()
            if not loaded:
                with self._lock:
                    first = min((d for d, _ in self._active.values()), default=None)
                if first is not None and first - now <= 2 * _POLL:
                    # A render may soon overrun: import ctypes now, outside the
                    # lock (under load an import takes a while, and every render
                    # that starts or ends waits for this lock).
                    _load()
                    loaded = True
                    now = time.monotonic()
            with self._lock:
                if not self._active:
                    if now - idle_since > _IDLE_EXIT:
                        self._thread = None
                        return
                    continue
                idle_since = now
                for token, (deadline, thread_id) in self._active.items():
                    if thread_id in self._held:
                        continue
                    if deadline <= now and token not in self._fired:
                        self._fired.add(token)
                        _raise_in(thread_id, RenderTimeout)


class _Section:
    __slots__ = ("_watchdog",)

    def __init__(self, watchdog: Watchdog) -> None:
        self._watchdog = watchdog

    def __enter__(self) -> None:
        self._watchdog._hold()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._watchdog._release(raising=kind is not None)


WATCHDOG = Watchdog()
