"""The option objects the edges build take each setting of their fields' names
(``settingtable.options_of``), and the renamed and derived ones as ``wiring`` says."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from falsework.config import Settings
from falsework.engine import StoreOptions, WorkerOptions
from falsework.settingtable import options_of
from falsework.wiring import broker_options, run_limits, worker_options


@dataclass(frozen=True)
class Probe:
    interval: float = 0.0
    batch: int = 0
    budget: float = 1.0


def test_a_field_takes_the_setting_of_its_name_after_the_prefix() -> None:
    settings = SimpleNamespace(retention_interval=60.0, retention_batch=500, interval=99.0)
    # interval: retention_interval, not interval; batch: given; budget: not a setting
    assert options_of(Probe, settings, "retention_", batch=3) == Probe(60.0, 3, 1.0)


def test_the_engine_and_runner_options_of_settings() -> None:
    settings = Settings(
        concurrency=7,
        heartbeat_interval=1.5,
        stale_timeout=30,
        max_open_tasks_per_user=6,
        max_running_per_user=5,
        db_keepalive=3,
        retention_batch=16,
        max_each=17,
    )
    worker, broker = worker_options(settings), broker_options(settings)
    assert (worker.concurrency, worker.heartbeat_interval, worker.stale_timeout) == (7, 1.5, 30)
    # derived from the stale timeout when not set: the lease, its margin, statements
    assert (worker.lease, worker.lease_margin) == (20.0, 4.0)
    assert broker.store.statement_timeout == 10.0
    assert worker.retention is not None and worker.retention.batch == 16
    assert (broker.max_open_per_user, broker.max_running_per_user) == (6, 5)
    assert broker.worker_stale_after == 30 and broker.store.keepalive == 3
    # not settings: the class's own defaults
    assert worker.heartbeat_batch == WorkerOptions().heartbeat_batch
    assert broker.store.pool_size == StoreOptions().pool_size
    assert run_limits(settings).max_each == 17
    set_apart = Settings(lease=9, lease_margin=1, db_statement_timeout=4, stale_timeout=20)
    assert (worker_options(set_apart).lease, worker_options(set_apart).lease_margin) == (9, 1)
    assert broker_options(set_apart).store.statement_timeout == 4
