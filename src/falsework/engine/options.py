"""The engine's options: small frozen values built at the edge (CLI, app factory).

The engine never reads the configuration itself; ``falsework.wiring`` builds
these from ``Settings``. Defaults are those of docs/engine.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from falsework.taskio import Wording


@dataclass(frozen=True)
class StoreOptions:
    # Postgres: the most pooled connections per process (the listener is one more).
    pool_size: int = 20
    # SQLite: reader connections beside the one writer.
    readers: int = 4


@dataclass(frozen=True)
class BrokerOptions:
    wording: Wording  # the final events the engine writes itself (the runner's words)
    secret_key: str | None = None  # Fernet key; None: read or create key_file
    key_file: Path = Path(".falsework/secret.key")
    poll_interval: float = 1.0  # a subscriber's safety-net poll (listener away, SQLite)
    max_poll_interval: float = 5.0  # the same while the Postgres listener is connected
    max_running_per_user: int | None = None  # the claim's fairness cap
    max_open_per_user: int | None = None  # open + running tasks per creator (create, retry)
    store: StoreOptions = StoreOptions()


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 100
    heartbeat_interval: float = 2.0
    stale_timeout: float = 15.0
    poll_interval: float = 1.0
    max_poll_interval: float = 5.0
    max_claim_delay: float = 0.05
    janitor_interval: float = 2.0
    shutdown_grace: float = 30.0
    max_rss_mb: int | None = None
    secret_retention: float = 86_400.0
