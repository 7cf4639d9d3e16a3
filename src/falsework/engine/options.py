"""The engine's options: small frozen values built at the edge (CLI, app factory).

The engine never reads the configuration itself; ``falsework.wiring`` builds
these from ``Settings``. Defaults are those of docs/engine.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from falsework.errors import InputError
from falsework.taskio import Wording


@dataclass(frozen=True)
class StoreOptions:
    # Postgres: the most pooled connections per process (the listener is one more).
    pool_size: int = 20
    # SQLite: reader connections beside the one writer.
    readers: int = 4
    # Postgres, every session (docs/engine.md, "Timing"): the server cancels a
    # statement running longer, and ends a session idle inside a transaction
    # longer, than this, so no lock outlives a lost client by more; the client
    # gives up on a reply after this + 1 s.
    statement_timeout: float = 5.0
    # Postgres: the longest wait for a new connection (TCP, TLS and login).
    connect_timeout: float = 5.0
    # Postgres, both ends of every connection: TCP keepalive probes after this
    # many idle seconds, then every half of it, 3 unanswered ones end the
    # connection; unacknowledged data ends it after 3 × this (TCP_USER_TIMEOUT).
    keepalive: int = 2
    # Whether a task that ends enters the webhooks' outbox (tasks.hooked_at):
    # False when no webhook is configured, so a finish is marked announced as it
    # is written (no outbox index entry, no second write by the dispatcher), and
    # webhooks configured later announce only the tasks that end after.
    announce_finishes: bool = True

    def __post_init__(self) -> None:
        for name in ("statement_timeout", "connect_timeout", "keepalive"):
            if not getattr(self, name) > 0:  # keepalive: whole seconds, at least 1
                raise InputError(f"StoreOptions.{name} must be positive, not {getattr(self, name)}")

    @property
    def command_timeout(self) -> float:
        """The client's bound on one statement's reply (the server's + 1 s)."""
        return self.statement_timeout + 1.0


@dataclass(frozen=True)
class BrokerOptions:
    wording: Wording  # the final events the engine writes itself (the runner's words)
    secret_key: str | None = None  # Fernet key; None: read or create key_file
    key_file: Path = Path(".falsework/secret.key")
    poll_interval: float = 1.0  # a subscriber's safety-net poll (listener away, SQLite)
    max_poll_interval: float = 5.0  # the same while the Postgres listener is connected
    max_running_per_user: int | None = None  # the claim's fairness cap
    max_open_per_user: int | None = None  # open + running tasks per creator (create, retry)
    # a worker whose heartbeat is older is listed with no running tasks (its
    # tasks are, or are about to be, recovered): the stale timeout
    worker_stale_after: float = 15.0
    store: StoreOptions = StoreOptions()


DAY = 86_400.0


@dataclass(frozen=True)
class RetentionOptions:
    """How long finished tasks (with their events) and audit rows are kept, in
    seconds; 0 keeps them forever. docs/operations.md says why these defaults."""

    completed: float = 30 * DAY
    failed: float = 90 * DAY
    cancelled: float = 7 * DAY
    audit: float = 365 * DAY
    interval: float = 60.0  # a pass at most this often, by one node of the cluster
    batch: int = 500  # at most this many tasks (and their events) per transaction
    batch_seconds: float = 0.05  # a batch is made smaller while it takes longer than this
    budget: float = 10.0  # seconds of one pass; a backlog goes on in the next one
    reclaim_pages: int = 4096  # SQLite: pages given back to the file system per pass


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 100
    heartbeat_interval: float = 2.0
    # the leases of one heartbeat statement: a beat of more running tasks is sent
    # in parts, each within the statement timeout (worker.beat)
    heartbeat_batch: int = 1_000
    stale_timeout: float = 15.0
    poll_interval: float = 1.0
    max_poll_interval: float = 5.0
    max_claim_delay: float = 0.05
    janitor_interval: float = 2.0
    shutdown_grace: float = 30.0
    max_rss_mb: int | None = None
    secret_retention: float = 86_400.0
    # Self-fencing (docs/engine.md, "Timing"): a worker owns its tasks until the
    # send time of its last successful heartbeat + lease - lease_margin; past it
    # no step starts and its runs are cancelled. A janitor recovers a task only
    # when its heartbeat is older than stale_timeout > lease + lease_margin.
    lease: float = 10.0
    lease_margin: float = 2.0
    retention: RetentionOptions | None = None  # None: this worker deletes nothing

    def __post_init__(self) -> None:
        if not 0 < self.lease_margin < self.lease:
            raise InputError(
                f"The lease margin ({self.lease_margin} s) must be positive and below "
                f"the lease ({self.lease} s)"
            )
        if not self.stale_timeout > self.lease + self.lease_margin:
            raise InputError(
                f"The stale timeout ({self.stale_timeout} s) must exceed the lease "
                f"({self.lease} s) + its margin ({self.lease_margin} s): otherwise a task "
                "could be recovered while its first worker still runs it"
            )
        if self.heartbeat_batch < 1:
            raise InputError(f"The heartbeat batch ({self.heartbeat_batch}) must be at least 1")
        if not self.lease - self.lease_margin > self.heartbeat_interval:
            raise InputError(
                f"The lease ({self.lease} s) minus its margin ({self.lease_margin} s) must "
                f"exceed the heartbeat interval ({self.heartbeat_interval} s)"
            )

    @property
    def fence_after(self) -> float:
        """Seconds after a successful heartbeat's send time that runs may go on."""
        return self.lease - self.lease_margin
