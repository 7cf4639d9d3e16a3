"""engine/heap.py: the start of `falsework serve` and `falsework worker` freezes
the start-up heap and collects the youngest generation less often; cyclic garbage
is still collected without anyone asking. (The engine itself never touches the
collector: tests/integration/engine/test_worker.py.)"""

from __future__ import annotations

import gc
import weakref

import pytest

from falsework.engine import heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic GC frees it


@pytest.fixture
def fresh_gc(monkeypatch: pytest.MonkeyPatch) -> object:
    saved = gc.get_threshold()
    monkeypatch.setattr(heap, "_frozen", False)
    monkeypatch.setattr(heap.gc, "freeze", lambda: None)  # leave the test run's heap alone
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


@pytest.mark.usefixtures("fresh_gc")
def test_the_youngest_generation_is_collected_less_often_once_per_process() -> None:
    heap.freeze_startup_heap()
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, 10, 10)
    gc.set_threshold(123, 10, 10)
    heap.freeze_startup_heap()  # once per process
    assert gc.get_threshold() == (123, 10, 10)


@pytest.mark.usefixtures("fresh_gc")
def test_a_collector_turned_off_stays_off() -> None:
    gc.set_threshold(0)
    heap.freeze_startup_heap()
    assert gc.get_threshold()[0] == 0


@pytest.mark.usefixtures("fresh_gc")
def test_cyclic_garbage_is_still_collected_on_its_own() -> None:
    heap.freeze_startup_heap()
    assert gc.isenabled()
    node = _Node()
    gone = weakref.ref(node)
    del node
    assert gone() is not None  # a cycle: its reference count never reaches 0
    # enough new container objects kept alive to pass the threshold
    kept = [[] for _ in range(3 * heap.YOUNG_THRESHOLD)]
    assert gone() is None
    del kept
