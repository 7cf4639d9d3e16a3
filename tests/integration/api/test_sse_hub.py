"""The event hub in process, on the real broker and worker: many watchers of one
task share one subscription and each gets every event once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

from falsework.api.sse import KEEPALIVE, EventHub, frame
from falsework.config import Settings
from falsework.engine import TaskWorker
from falsework.runner import as_executor
from falsework.templates import TemplateCatalog
from falsework.wiring import open_broker, worker_options, workflow_runner

TEMPLATES = Path(__file__).resolve().parents[2] / "support" / "api_templates"


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
        assert all(stream == expected for stream in streams)
        assert set(channels_seen) == {1}  # fifty watchers, one subscription
        assert hub.channels == 0  # the channel went away with its last watcher
        # a late watcher resuming after the second event reads the rest from a
        # fresh subscription, the first two skipped
        late = await watch(events[1].id)
        assert late == expected[2:]
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
