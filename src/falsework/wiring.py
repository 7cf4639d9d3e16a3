"""What the edges (the CLI commands, the app factory) build from ``Settings`` for
the engine: its option objects, with the runner's words for the final events.

The engine never reads the configuration; this module is where ``Settings``
becomes the engine's plain values.
"""

from __future__ import annotations

from falsework.config import Settings
from falsework.engine import Broker, BrokerOptions, WorkerOptions
from falsework.engine.crypto import KEY_FILE
from falsework.runner import BACKSTAGE


def broker_options(settings: Settings) -> BrokerOptions:
    return BrokerOptions(
        wording=BACKSTAGE,
        secret_key=settings.secret_key,
        key_file=settings.data_dir / KEY_FILE,
        poll_interval=settings.poll_interval,
        max_poll_interval=settings.max_poll_interval,
        max_running_per_user=settings.max_running_per_user,
        max_open_per_user=settings.max_open_tasks_per_user,
    )


def worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        concurrency=settings.concurrency,
        heartbeat_interval=settings.heartbeat_interval,
        stale_timeout=settings.stale_timeout,
        poll_interval=settings.poll_interval,
        max_poll_interval=settings.max_poll_interval,
        max_claim_delay=settings.max_claim_delay,
        janitor_interval=settings.janitor_interval,
        shutdown_grace=settings.shutdown_grace,
        max_rss_mb=settings.max_rss_mb,
        secret_retention=settings.secret_retention,
    )


async def open_broker(settings: Settings) -> Broker:
    """The broker of ``settings``' database (migrated, its listener started)."""
    return await Broker.open(settings.resolved_database_url, broker_options(settings))
