"""Named side tasks that are restarted, with backoff and a log line, when they die.

Backstage once lost its claim loop for days to one dropped connection; here a
heartbeat, listener, janitor or flusher that raises is logged and started again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from falsework.errors import DatabaseUnavailableError

log = logging.getLogger("falsework.engine")


class Supervisor:
    def __init__(self, *, min_backoff: float = 0.1, max_backoff: float = 5.0) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._min = min_backoff
        self._max = max_backoff
        self.restarts: dict[str, int] = {}

    def start(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        self.restarts.setdefault(name, 0)
        self._tasks[name] = asyncio.create_task(self._keep(name, body), name=f"falsework-{name}")

    def alive(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    async def _keep(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        backoff = self._min
        while True:
            started = time.monotonic()
            try:
                await body()
                log.warning("side task %s returned; restarting it", name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, DatabaseUnavailableError):
                    # expected while the database is away: one line, no traceback
                    log.warning("side task %s lost the database (%s); restarting", name, exc)
                else:
                    log.exception("side task %s died; restarting in %.1fs", name, backoff)
            if time.monotonic() - started > 30:
                backoff = self._min
            self.restarts[name] += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max)

    async def stop(self, *names: str) -> None:
        """Stop the named side tasks (all of them when no name is given)."""
        chosen = [n for n in (names or tuple(self._tasks)) if n in self._tasks]
        tasks = [self._tasks.pop(n) for n in chosen]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
