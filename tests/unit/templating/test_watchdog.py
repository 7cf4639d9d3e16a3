"""The render watchdog stops over-long renders in a thread that runs under a
tracer (coverage, a debugger, a profiler) as it does without one.

The tracer here is cProfile's: written in C like coverage's, so the watchdog's
exception always lands in the code it stops. (One written in Python may take
the exception itself, and Python then turns tracing off for the thread.)"""

from __future__ import annotations

import cProfile
import threading
from collections.abc import Callable
from typing import Any

import pytest

from falsework.errors import TemplateSecurityError
from falsework.templating import Renderer
from falsework.templating.watchdog import RenderTimeout, Watchdog, _raise_in

ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
HANG = 60.0  # far beyond the renders' limits: only a hang waits this long


def _in_traced_thread(work: Callable[[], Any]) -> list[Any]:
    """Runs ``work`` in a thread under a profiler; its outcome, or a hang."""
    outcome: list[Any] = []

    def run() -> None:
        profiler = cProfile.Profile()
        profiler.enable()  # this thread only
        try:
            outcome.append(work())
        except BaseException as exc:
            outcome.append(exc)
        finally:
            profiler.disable()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG)
    if thread.is_alive():
        # The old watchdog left the thread spinning at its next call; an
        # exception it does take frees it, so the rest of the run goes on.
        assert thread.ident is not None
        _raise_in(thread.ident, SystemExit)
        thread.join(HANG)
        pytest.fail("the traced thread hung after its first timed-out render")
    return outcome


def test_a_traced_thread_stops_one_over_long_render_after_another() -> None:
    quick = Renderer(timeout=0.2)
    ctx = {"parameters": {"count": 3}}

    def renders() -> list[str]:
        messages = []
        for _ in range(3):
            try:
                quick.render(ENDLESS, ctx)
            except TemplateSecurityError as exc:
                messages.append(str(exc))
        messages.append(str(quick.render("${{ parameters.count }}", ctx)))
        return messages

    [messages] = _in_traced_thread(renders)
    assert messages == ["rendering took longer than the limit of 0.2s"] * 3 + ["3"]


def test_a_traced_thread_is_stopped_by_the_watchdog_itself() -> None:
    watchdog = Watchdog()

    def spin() -> int:
        stopped = 0
        for _ in range(2):
            token = watchdog.start(0.05)
            try:
                while True:
                    pass
            except RenderTimeout:
                stopped += 1
            finally:
                watchdog.stop(token)
        return stopped

    assert _in_traced_thread(spin) == [2]
