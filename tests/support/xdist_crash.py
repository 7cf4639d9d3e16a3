"""xdist's ``--dist loadfile`` scheduler, made to survive a worker that dies.

`make test` runs on two xdist workers, file by file. A test past its timeout
ends its worker (pyproject: ``timeout_method = "thread"``), and xdist 3.8's
``LoadScopeScheduling.remove_node`` then puts the dead worker's *whole* workload
back on the queue: the files it had finished (whose units hold no test left to
run) and the test it died on, still pending. A finished file handed out later
becomes an empty command that no report ever answers, a worker is given more
work only when it reports, and once both workers wait on empty units the run
hangs until CI's time limit (pytest-xdist issues #1323, #1327 and #1378; the
fixes are merged upstream but not released as of 3.8.0). Here a dead worker's
finished files are dropped, the test it died on counts as done (xdist has
already reported it failed), and a worker left with fewer than two tests to run
is given the next file, or told to finish, at once. pytest-rerunfailures (the
Makefile's RERUNS) asks for the test a worker died on to run again through
``mark_test_pending``, which xdist's file scheduler does not offer; here it does.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadFileScheduling
from xdist.workermanage import WorkerController


class CrashSafeLoadFile(LoadFileScheduling):
    def remove_node(self, node: WorkerController) -> str | None:
        workload = self.assigned_work.pop(node)
        left = {scope: unit for scope, unit in workload.items() if not all(unit.values())}
        if not left:
            return None
        crashed = next(
            nodeid for unit in left.values() for nodeid, done in unit.items() if not done
        )
        for unit in left.values():
            if crashed in unit:
                unit[crashed] = True
        # the rest of the files it had not finished, in their order, before the others
        requeued = {scope: unit for scope, unit in left.items() if not all(unit.values())}
        rest = dict(self.workqueue)
        self.workqueue.clear()
        self.workqueue.update(requeued)
        self.workqueue.update(rest)
        for other in list(self.assigned_work):
            self._reschedule(other)
        return crashed

    def mark_test_pending(self, item: str) -> None:
        """Run ``item`` again (pytest-rerunfailures, after its worker died)."""
        scope = self._split_scope(item)
        unit = self.workqueue.get(scope)
        if unit is not None:
            unit[item] = False
            return
        for node, work in self.assigned_work.items():
            held = work.get(scope)
            if held is not None and not all(held.values()):
                # another worker already runs the rest of its file: it runs this too
                if node.shutting_down:
                    raise NotImplementedError(f"{scope} runs on a worker that is finishing")
                held[item] = False
                node.send_runtest_some([self.registered_collections[node].index(item)])
                return
        self.workqueue[scope] = {item: False}
        self.workqueue.move_to_end(scope, last=False)

    def _reschedule(self, node: WorkerController) -> None:
        if node not in self.registered_collections:
            # a replacement still collecting (xdist 3.8 asked it for work and died
            # on a KeyError when another worker's collection or death came first):
            # its own collection's arrival schedules it
            return
        super()._reschedule(node)
        # A worker runs a test once it holds the next one (or is told to finish):
        # one holding a single test, as a replacement given a one-test file is,
        # would wait for ever.
        while (
            not node.shutting_down
            and node in self.assigned_work
            and self._pending_of(self.assigned_work[node]) < 2
        ):
            if not self.workqueue:
                node.shutdown()
                return
            self._assign_work_unit(node)


def make_scheduler(config: Any, log: Any) -> LoadFileScheduling | None:
    """The ``pytest_xdist_make_scheduler`` answer: ours for ``--dist loadfile``."""
    if config.getvalue("dist") != "loadfile":
        return None
    return CrashSafeLoadFile(config, log)
