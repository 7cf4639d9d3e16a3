"""The ``--dist loadfile`` scheduler of `make test` after a worker dies (a test
past its timeout ends its worker): that one test fails, every other runs once
(tests/support/xdist_crash.py).

Driven as xdist's controller drives it, over a grid of suites and crash points,
with workers that run a test only once they hold the next one or are told to
finish (as xdist's do). On xdist 3.8.0's own ``LoadFileScheduling`` every case
of this grid without a rerun fails: the test it died on runs again, or both
workers end up waiting with tests never run (the hang of pytest-xdist #1323,
#1327, #1378); and it cannot run the test again when asked.
tests/integration/test_xdist_crash.py crashes a real worker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from support.xdist_crash import CrashSafeLoadFile


class _Config:
    """What the scheduler reads of pytest's config: two workers, files in order."""

    option = SimpleNamespace(loadscopereorder=False)

    def getvalue(self, name: str) -> object:
        return {"tx": ["2*popen"]}[name]


class _Worker:
    """What the scheduler calls on xdist's WorkerController."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.held: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.held += indices

    def shutdown(self) -> None:
        self.shutting_down = True


def _drive(files: int, tests: int, crash: str, rotate: bool, rerun: bool) -> list[str]:
    """Run a suite of ``files`` files of ``tests`` tests through the scheduler, a
    worker dying on ``crash`` and replaced as xdist replaces it (``rerun``: the
    crashed test asked for again, as pytest-rerunfailures asks); the tests run."""
    collection = [f"test_{f}.py::t{t}" for f in range(files) for t in range(tests)]
    sched = CrashSafeLoadFile(_Config())  # type: ignore[arg-type]
    workers = [_Worker("gw0"), _Worker("gw1")]
    for worker in workers:
        sched.add_node(worker)  # type: ignore[arg-type]
    for worker in workers:
        sched.add_node_collection(worker, collection)  # type: ignore[arg-type]
    sched.schedule()
    ran: list[str] = []
    died = False
    for step in range(10 * len(collection)):
        ready = [
            w
            for w in sched.nodes
            if len(w.held) >= 2 or (w.shutting_down and w.held)  # type: ignore[attr-defined]
        ]
        if not ready:
            break
        worker = ready[step % len(ready)] if rotate else ready[0]
        index = worker.held.pop(0)  # type: ignore[attr-defined]
        if collection[index] == crash and not died:
            died = True
            assert sched.remove_node(worker) == crash
            if rerun:
                sched.mark_test_pending(crash)
            new = _Worker("gw2")
            sched.add_node(new)  # type: ignore[arg-type]
            sched.add_node_collection(new, collection)  # type: ignore[arg-type]
            sched.schedule()
            continue
        ran.append(collection[index])
        sched.mark_test_complete(worker, index)
    assert died
    assert all(w.shutting_down for w in sched.nodes)  # type: ignore[attr-defined]
    return ran


@pytest.mark.parametrize("rerun", [False, True])
@pytest.mark.parametrize("rotate", [True, False])
@pytest.mark.parametrize("tests", [1, 2, 3])
@pytest.mark.parametrize("files", [2, 3, 4, 5, 8])
def test_after_a_worker_dies_every_other_test_runs_once(
    files: int, tests: int, rotate: bool, rerun: bool
) -> None:
    for dies_in in range(files):
        for position in sorted({0, tests - 1}):
            crash = f"test_{dies_in}.py::t{position}"
            ran = _drive(files, tests, crash, rotate, rerun)
            every = [f"test_{f}.py::t{t}" for f in range(files) for t in range(tests)]
            # run again, the test passes the second time
            expected = every if rerun else [n for n in every if n != crash]
            assert sorted(ran) == sorted(expected), (dies_in, position, ran)


def test_a_test_asked_for_again_goes_to_the_worker_already_running_its_file() -> None:
    collection = [f"test_{f}.py::t{t}" for f in range(6) for t in range(4)]
    sched = CrashSafeLoadFile(_Config())  # type: ignore[arg-type]
    gw0, gw1 = _Worker("gw0"), _Worker("gw1")
    for worker in (gw0, gw1):
        sched.add_node(worker)  # type: ignore[arg-type]
    for worker in (gw0, gw1):
        sched.add_node_collection(worker, collection)  # type: ignore[arg-type]
    sched.schedule()
    scope = collection[gw1.held[0]].split("::")[0]
    crash = f"{scope}::t0"
    assert sched.remove_node(gw1) == crash  # type: ignore[arg-type]
    # the rest of its file first in the queue; gw0 takes it before the rerun is asked
    assert next(iter(sched.workqueue)) == scope
    before = len(gw0.held)
    sched._assign_work_unit(gw0)  # type: ignore[arg-type]
    assert [collection[i] for i in gw0.held[before:]] == [f"{scope}::t{t}" for t in (1, 2, 3)]
    sched.mark_test_pending(crash)
    assert collection[gw0.held[-1]] == crash
    assert scope not in sched.workqueue
