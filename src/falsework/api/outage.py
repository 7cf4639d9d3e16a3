"""One log line per database outage, not one per request.

While the database is away every request that needs it answers 503; logging each
one (let alone its traceback) buries the log. The first failure of an outage is
logged with the store's one-line reason; later ones are only counted, and the
first failure after a quiet spell of ``QUIET`` seconds starts a new outage, whose
line also says how many requests the previous one refused.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("falsework.api")

# Seconds without a failure after which the next one belongs to a new outage.
QUIET = 5.0
# What a 503 tells a client to wait before trying again (the Retry-After header).
RETRY_AFTER = 2


class OutageLog:
    def __init__(self, quiet: float = QUIET) -> None:
        self._quiet = quiet
        self._last = float("-inf")
        self.refused = 0  # failures in the current outage
        self.outages = 0

    def note(self, where: str, exc: BaseException) -> None:
        """Record one failure to reach the database at ``where``."""
        now = time.monotonic()
        if now - self._last > self._quiet:
            before = f" (the previous one refused {self.refused})" if self.outages else ""
            self.outages += 1
            self.refused = 0
            log.warning("database unavailable%s, first seen on %s: %s", before, where, exc)
        self._last = now
        self.refused += 1


# one per process: the API's error handler, the event streams and /readyz share it
OUTAGES = OutageLog()
