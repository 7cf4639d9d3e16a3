"""The event hub in process, on the real broker and worker: many watchers of one
task share one subscription and each gets every event once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

from falsework.api.sse import KEEPALIVE, MAX_FRAMES_PER_CHUNK, EventHub, frame
from falsework.config import Settings
from falsework.engine import TaskWorker
from falsework.engine.codec import dumps
from falsework.engine.models import Finish, WriteBatch
from falsework.runner import as_executor
from falsework.templates import TemplateCatalog
from falsework.wiring import open_broker, worker_options, workflow_runner
from support.paths import TESTS

TEMPLATES = TESTS / "support" / "api_templates"


async def test_watchers_share_one_channel_and_see_every_event(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        templates=str(TEMPLATES),
        secret_key="q0WZ3v0n1Fv7d9b5Qm1mKc5V4r6Hn3bJ8yq2tF3pG0E=",
        heartbeat_interval=0.5,
    )
    broker = await open_broker(settings)
    runner = workflow_runner(settings)
    worker = TaskWorker(broker, as_executor(runner), worker_options(settings))
    hub = EventHub(broker, keepalive=0.2)
    template = TemplateCatalog(settings.template_dirs).get("template:default/wait")
    task = await broker.create(template.task_spec({"seconds": 1}, {"ref": "user:default/t"}))
    running = asyncio.create_task(worker.run())
    try:
        channels_seen: list[int] = []

        async def watch(after: int | None) -> list[bytes]:
            got = []
            async for chunk in hub.watch(task.id, after):
                channels_seen.append(hub.channels)
                if chunk != KEEPALIVE:
                    got.append(chunk)
            return got

        streams = await asyncio.gather(*(watch(None) for _ in range(50)))
        events = await broker.events(task.id)
        expected = [frame(e) for e in events]
        assert events[-1].type == "completion"
        # a chunk carries whatever arrived since the watcher's last send: the
        # bytes on the wire are every frame once, in order
        assert all(b"".join(stream) == b"".join(expected) for stream in streams)
        assert set(channels_seen) == {1}  # fifty watchers, one subscription
        assert hub.channels == 0  # the channel went away with its last watcher
        # a late watcher resuming after the second event reads the rest from a
        # fresh subscription, the first two skipped
        late = await watch(events[1].id)
        assert late == [b"".join(expected[2:])]  # the history at once, one chunk
        # long-poll: nothing after the last event of a finished task, at once
        assert await hub.wait(task.id, events[-1].id, 30.0) == []
        assert [e.id for e in await hub.wait(task.id, events[0].id, 30.0)] == [
            e.id for e in events[1:]
        ]
    finally:
        await hub.close()
        await worker.stop()
        await running
        await broker.close()


async def test_a_long_history_goes_out_in_bounded_chunks(database_url: str, tmp_path: Path) -> None:
    """A watcher that joins a finished task late gets its history in chunks of at
    most MAX_FRAMES_PER_CHUNK frames, every frame once and in order, then the end."""
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        templates=str(TEMPLATES),
        secret_key="q0WZ3v0n1Fv7d9b5Qm1mKc5V4r6Hn3bJ8yq2tF3pG0E=",
    )
    broker = await open_broker(settings)
    hub = EventHub(broker, keepalive=30.0)
    try:
        task = await broker.create({"steps": []})
        (claimed,) = await broker.claim("w", 1)
        token = claimed.claim_token
        batch = WriteBatch(tokens={task.id: token})
        for i in range(MAX_FRAMES_PER_CHUNK + 10):
            batch.events.append((task.id, token, "log", dumps({"message": f"line {i}"})))
        batch.finishes.append(Finish(task.id, token, "completed", "completion", "{}", False))
        assert await broker.write(batch) == set()
        chunks = [chunk async for chunk in hub.watch(task.id)]
        events = await broker.events(task.id)
        assert len(events) == MAX_FRAMES_PER_CHUNK + 11  # and the completion
        assert b"".join(chunks) == b"".join(frame(e) for e in events)
        assert [c.count(b"\nid: ") for c in chunks] == [MAX_FRAMES_PER_CHUNK, 11]
    finally:
        await hub.close()
        await broker.close()
