"""Per-user quotas of one process: holds at once (dry-runs, event streams) and a rate.

Both live in this process's memory: on N nodes behind a load balancer a user may
hold N times as much. That bounds what one user can make one process do, which is
the point; the cluster-wide caps (open tasks) live in the database.

The rate is a token bucket written here rather than taken from a library: it is a
dozen lines, needs no storage backend, and gives the exact ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from falsework.errors import TooManyRequestsError


class UserSlots:
    """At most ``limit`` holds per user at once."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what  # "event streams", for the message
        self._held: dict[str, int] = {}

    def take(self, user: str, retry_after: float | None = None) -> Callable[[], None]:
        """Hold one slot of ``user`` or raise 429; returns the release (idempotent)."""
        held = self._held.get(user, 0)
        if held >= self.limit:
            raise TooManyRequestsError(
                f"{user} already has {held} {self.what} open on this server "
                f"(the limit is {self.limit} per user); close one first.",
                retry_after=retry_after,
            )
        self._held[user] = held + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._held.get(user, 1) - 1
            if left > 0:
                self._held[user] = left
            else:
                self._held.pop(user, None)

        return release

    def held(self, user: str) -> int:
        return self._held.get(user, 0)


class UserRate:
    """``per_minute`` starts per user: a bucket of that many, refilled evenly."""

    _PRUNE_AT = 10_000

    def __init__(self, per_minute: int, what: str, clock: Callable[[], float] = time.monotonic):
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self.what = what
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # user → (tokens, at)

    def take(self, user: str) -> None:
        now = self._clock()
        tokens, at = self._buckets.get(user, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.per_second)
        if tokens < 1.0:
            wait = (1.0 - tokens) / self.per_second
            raise TooManyRequestsError(
                f"{user} started more than {int(self.capacity)} {self.what} in a minute "
                f"(the limit per user); try again in {wait:.0f} s.",
                retry_after=wait,
            )
        self._buckets[user] = (tokens - 1.0, now)
        if len(self._buckets) > self._PRUNE_AT:
            self._prune(now)

    def _prune(self, now: float) -> None:
        # a full bucket is the same as no bucket
        refill = self.capacity / self.per_second
        self._buckets = {u: b for u, b in self._buckets.items() if now - b[1] < refill}
