"""A webhook delivery survives a kill -9 of the worker sending it: real
``falsework worker`` processes on each dialect, a loopback receiver that holds the
first request open while its sender is killed. Delivered once or more, never
lost, every time with the same delivery id and a valid signature."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from falsework import webhooks
from falsework.config import Settings
from support.engine import open_broker, wait_final, wait_for
from support.receiver import SECRET, receiving

FALSEWORK = Path(sys.executable).with_name("falsework")


def _env(url: str, tmp_path: Path, receiver_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "FALSEWORK_DATABASE_URL": url,
        "FALSEWORK_DATA_DIR": str(tmp_path / "data"),
        "FALSEWORK_TEMPLATES": str(tmp_path),
        "FALSEWORK_HEARTBEAT_INTERVAL": "0.2",
        "FALSEWORK_STALE_TIMEOUT": "1.5",
        "FALSEWORK_JANITOR_INTERVAL": "0.2",
        "FALSEWORK_POLL_INTERVAL": "0.2",
        "FALSEWORK_MAX_POLL_INTERVAL": "0.5",
        "FALSEWORK_EGRESS": json.dumps({"allow": ["127.0.0.1"]}),
        "FALSEWORK_WEBHOOKS": json.dumps(
            [{"url": receiver_url, "secret_env": "HOOK_SECRET", "events": ["completed"]}]
        ),
        "HOOK_SECRET": SECRET,
    }


def _start(env: dict[str, str], cwd: Path, name: str) -> subprocess.Popen[bytes]:
    with (cwd / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [str(FALSEWORK), "worker", "--concurrency", "4"],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


SPEC: dict[str, Any] = {
    "apiVersion": "scaffolder.backstage.io/v1beta3",
    "steps": [{"id": "log", "name": "Log", "action": "debug:log", "input": {"message": "hi"}}],
    "output": {"text": [{"title": "Done", "content": "made"}]},
    "parameters": {},
    "templateInfo": {"entityRef": "template:default/demo"},
}


async def test_a_delivery_survives_a_kill_9_of_its_sender(
    database_url: str, tmp_path: Path
) -> None:
    broker = await open_broker(database_url, Settings(data_dir=tmp_path / "data"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with receiving() as receiver:
            receiver.script = ["hold"]  # the first try hangs until its sender is dead
            env = _env(database_url, tmp_path, receiver.url)
            procs.append(_start(env, tmp_path, "first"))
            task = await broker.create(SPEC, created_by="user:default/ann")
            assert (await wait_final(broker, task.id, within=30)).status == "completed"
            assert await asyncio.to_thread(receiver.arrived.wait, 30)
            procs[0].send_signal(signal.SIGKILL)
            await asyncio.to_thread(procs[0].wait, 10)
            procs.append(_start(env, tmp_path, "second"))

            async def delivered() -> bool:
                return any(
                    e.body.get("webhook", {}).get("outcome") == "delivered"
                    for e in await broker.events(task.id)
                )

            await wait_for(delivered, within=30)
            received = list(receiver.received)
        assert len(received) >= 2  # once or more: the held try, then the recovered one
        assert len({r.id for r in received}) == 1
        assert len({r.body for r in received}) == 1
        assert all(r.verified and r.by_hand for r in received)
        body = received[0].json
        assert body["type"] == "task.completed" and body["data"]["taskId"] == task.id
        assert body["data"]["output"]["text"][0]["content"] == "made"
        listed, _ = await broker.list(limit=20)
        (delivery,) = [t for t in listed if webhooks.is_delivery(t.spec)]
        assert delivery.status == "completed"
        assert delivery.attempt >= 2  # claimed again after its worker vanished
        assert delivery.spec["webhook"]["deliveryId"] == received[0].id  # type: ignore[index]
        recovered = [e for e in await broker.events(delivery.id) if e.type == "recovered"]
        assert recovered
        for name in ("first", "second"):
            logged = (tmp_path / f"{name}.log").read_text()
            assert SECRET not in logged and "token=abc" not in logged, logged
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        await broker.close()
