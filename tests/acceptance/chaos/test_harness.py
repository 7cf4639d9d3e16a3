"""The fault tools themselves: each fault does what the scenarios rely on."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import psycopg
import pytest

from support.chaos import PgPair, TcpProxy, net_namespace

pytestmark = pytest.mark.chaos

PG = ("127.0.0.1", 5432)


def test_proxy_forwards_then_freezes_then_cuts() -> None:
    proxy = TcpProxy(PG)
    try:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            proxy.freeze()
            done = threading.Event()

            def query() -> None:
                try:
                    conn.execute("SELECT 2")
                except psycopg.Error:
                    pass
                done.set()

            thread = threading.Thread(target=query, daemon=True)
            thread.start()
            # frozen: the query cannot complete while nothing moves
            assert not done.wait(0.5)
            assert proxy.cut() == 1
            proxy.thaw()
            assert done.wait(10)
    finally:
        proxy.close()


def test_a_refusing_proxy_resets_new_connections() -> None:
    proxy = TcpProxy(PG)
    try:
        proxy.refuse()
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres"
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=3)
    finally:
        proxy.close()


def test_a_partitioned_namespace_loses_its_link_and_gets_it_back() -> None:
    with net_namespace() as ns:
        server = socket.create_server((ns.host_ip, 0))
        port = server.getsockname()[1]
        probe = ns.command(
            "python3", "-c",
            f"import socket; socket.create_connection(('{ns.host_ip}', {port}), timeout=1)",
        )  # fmt: skip
        assert subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
        ns.partition()
        assert subprocess.run(probe, capture_output=True, timeout=10).returncode != 0
        ns.heal()
        assert subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
        server.close()


def test_a_standby_follows_and_takes_over() -> None:
    root = Path(tempfile.mkdtemp(prefix="fw-chaos-"))
    root.chmod(0o755)
    pair = PgPair.create(root / "pg")
    try:
        pair.create_database("app")
        url = pair.url("app")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (1)")
        pair.wait_replayed()
        pair.primary.kill()
        pair.standby.promote()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO t VALUES (2)")
            assert conn.execute("SELECT sum(x) FROM t").fetchone() == (3,)
    finally:
        pair.destroy()
