"""Keeps the start-up heap, and the worker's own churn, out of the cyclic
garbage collector's way: a choice the commands that run a worker make at their
start (``falsework serve``, ``falsework worker``), never the engine itself, so a
process that embeds a worker (a test, a benchmark, another application) keeps
its collector as it set it."""

from __future__ import annotations

import gc

# The youngest generation is collected after this many more container objects
# were made than freed (Python's default: 700). A worker keeps each running
# task's objects (its coroutines, context, step state: about 60) alive for the
# task's run, so at 100 runs the default collected every few tasks and each
# collection walked objects that were about to die anyway, then promoted them:
# the cyclic GC took a fifth to a quarter of the worker's CPU at one-step tasks.
# Objects freed by their reference count (nearly all) never wait for it; only
# cyclic garbage waits the longer, and there is little of it.
YOUNG_THRESHOLD = 10_000

_frozen = False


def freeze_startup_heap() -> None:
    """Once per process, when its start-up is done: move everything alive now
    (modules, options, the app, the engine's pools) out of the cyclic GC's reach. A full
    collection would otherwise walk that whole heap again and again while tasks
    churn through short-lived objects (a third of the worker's CPU at 20,000
    small tasks). The youngest generation is collected less often
    (``YOUNG_THRESHOLD``); the older ones as before."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()
        young, middle, old = gc.get_threshold()
        if young and young < YOUNG_THRESHOLD:  # 0: the collector was turned off
            gc.set_threshold(YOUNG_THRESHOLD, middle, old)
