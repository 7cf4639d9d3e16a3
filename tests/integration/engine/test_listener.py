"""The Postgres listener's own link check: a question (``SELECT 1``) only after a
silence, never while notifications show the link works (engine/notify.py,
Silence). That it still notices a frozen link is tests/acceptance/engine/test_outages.py's."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from falsework.engine.notify import Hub
from falsework.engine.postgres import CHANNEL_TASKS, PgListener
from support.engine import wait_for

pytestmark = [pytest.mark.postgres]


async def test_a_listener_that_hears_notifications_asks_nothing_and_a_silent_one_asks(
    postgres_url: str,
) -> None:
    hub = Hub()
    woken = [0]
    hub.watch_tasks(lambda: woken.__setitem__(0, woken[0] + 1))
    listener = PgListener(postgres_url, hub, keepalive=1.0)
    running = asyncio.create_task(listener.run())
    sender = await asyncpg.connect(postgres_url)
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        # a notification every 50 ms for 2.5 keepalives: the link is shown to work
        for _ in range(50):
            await sender.execute(f"NOTIFY {CHANNEL_TASKS}")
            await asyncio.sleep(0.05)
        assert woken[0] >= 50  # connecting woke everyone once, then each one
        assert listener.pings == 0
        # then nothing: after a keepalive of silence it asks, and goes on listening
        await wait_for(lambda: listener.pings > 0, within=10)
        assert listener.connects == 1
    finally:
        await sender.close()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
