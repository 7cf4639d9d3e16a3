"""Falsework behind PgBouncer in session pooling mode, the mode docs/operations.md
asks for: two real `falsework serve` nodes whose every connection (the pool, and
the LISTEN connection) goes through a real PgBouncer. A task created on the API-only
node A can only reach node B's worker, and B's events can only reach A's event
stream, through NOTIFY: both nodes' poll intervals are set far beyond the test's
time limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from falsework.engine.factory import open_store
from falsework.engine.options import StoreOptions
from falsework.engine.postgres import PostgresStore
from support.pgbouncer import pgbouncer
from support.servers import auth_config, sse_messages, start_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

API = "/api/scaffolder/v2"
NO_POLLING = {"FALSEWORK_POLL_INTERVAL": "600", "FALSEWORK_MAX_POLL_INTERVAL": "600"}


def test_two_nodes_through_pgbouncer_in_session_mode(postgres_url: str, tmp_path: Path) -> None:
    with pgbouncer(postgres_url, pool_mode="session") as bouncer:
        url = bouncer.url(postgres_url)
        config = auth_config()
        api = start_server(url, tmp_path / "a", config=config, env=NO_POLLING, concurrency=0)
        worker = start_server(url, tmp_path / "b", config=config, env=NO_POLLING, concurrency=5)
        try:
            client = api.client("alice")
            ids = [
                client.post(
                    f"{API}/tasks",
                    json={"templateRef": "template:default/wait", "values": {"seconds": 0.2}},
                ).json()["id"]
                for _ in range(3)
            ]
            for task_id in ids:
                stream = client.get(f"{API}/tasks/{task_id}/eventstream", timeout=60)
                messages = [m for m in sse_messages(stream.text) if "id" in m]
                assert messages[-1]["event"] == "completion", messages
                assert "completed" in json.loads(messages[-1]["data"])["body"]["message"]
            workers = api.client("admin").get(f"{API}/workers").json()
            assert [w["pid"] for w in workers] == [worker.process.pid]  # B ran them all
        finally:
            assert worker.stop() == 0
            assert api.stop() == 0


async def test_bounded_sessions_through_pgbouncer(postgres_url: str) -> None:
    """The session timeouts are SET on each new connection: PgBouncer refuses
    startup parameters it does not know (it would refuse every connection), and
    through it the settings still hold on the pool's and the listener's sessions."""
    options = StoreOptions(statement_timeout=0.7, keepalive=2)
    with pgbouncer(postgres_url, pool_mode="session") as bouncer:
        store = await open_store(bouncer.url(postgres_url), options)
        try:
            assert isinstance(store, PostgresStore)
            async with store._pool.acquire() as conn:  # what every pooled session has
                shown = {
                    name: await conn.fetchval(f"SHOW {name}")
                    for name in ("statement_timeout", "idle_in_transaction_session_timeout")
                }
                assert await conn.fetchval("SHOW application_name") == "falsework"
            assert shown == {
                "statement_timeout": "700ms",
                "idle_in_transaction_session_timeout": "700ms",
            }
        finally:
            await store.close()
