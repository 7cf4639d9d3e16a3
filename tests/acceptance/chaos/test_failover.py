"""Postgres failover, for real: a primary and a synchronous streaming standby
(two clusters on this machine), a ``falsework serve`` node and a ``falsework
worker`` node pointed at both through one multi-host URL
(``target_session_attrs=read-write``). Mid-run the primary is killed (SIGKILL)
and the standby promoted, as Patroni or CloudNativePG would; every task must
still complete, once.

Counted from independent records: the new primary's tables (lost tasks, failed
tasks, duplicate events) and a loopback HTTP recorder (each task's side effects,
with their Idempotency-Key). The figures are printed (``-s``) and written to
``failover.json`` in the test's folder; docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from support.chaos import PgPair
from support.recorder import Recorder, recording
from support.serve import clean_env
from support.servers import FALSEWORK, SECRET_KEY, auth_config, start_server, token_of

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

API = "/api/scaffolder/v2"
TEMPLATES = Path(__file__).with_name("templates")
TASKS = 24  # in flight at the fault
LATE = 8  # created while the database fails over (retried until accepted)
TIMINGS = {
    "FALSEWORK_HEARTBEAT_INTERVAL": "0.5",
    "FALSEWORK_STALE_TIMEOUT": "10",
    "FALSEWORK_JANITOR_INTERVAL": "1",
    "FALSEWORK_POLL_INTERVAL": "0.5",
    "FALSEWORK_MAX_POLL_INTERVAL": "1",
    "FALSEWORK_SHUTDOWN_GRACE": "5",
}


@pytest.fixture
def pair() -> Iterator[PgPair]:
    root = Path(tempfile.mkdtemp(prefix="fw-failover-"))
    root.chmod(0o755)
    made = PgPair.create(root / "pg")
    try:
        with psycopg.connect(made.primary.dsn, autocommit=True) as conn:
            # synchronous: a commit the primary acknowledged is on the standby too
            # (CloudNativePG's and Patroni's synchronous modes); with asynchronous
            # replication a failover may lose the last commits, whatever the client does
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            conn.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 30
            while (
                conn.execute(
                    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
                ).fetchone()
                or (0,)
            )[0] < 1:
                assert time.monotonic() < deadline, "the standby never became synchronous"
                time.sleep(0.1)
        made.create_database("app")
        yield made
    finally:
        made.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording() as server:
        yield server


def start_worker(url: str, workdir: Path, config: Path) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    env = clean_env()
    env.update(
        {
            "FALSEWORK_DATABASE_URL": url,
            "FALSEWORK_TEMPLATES": str(TEMPLATES),
            "FALSEWORK_DATA_DIR": str(workdir / "data"),
            "FALSEWORK_SECRET_KEY": SECRET_KEY,
            "FALSEWORK_CONFIG": str(config),
            **TIMINGS,
        }
    )
    with (workdir / "worker.log").open("wb") as out:
        return subprocess.Popen(
            [str(FALSEWORK), "worker", "--concurrency", "40", "--log-level", "info"],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def create(client: httpx.Client, recorder: Recorder, ticks: int) -> str:
    values = {"url": recorder.url, "ticks": list(range(ticks))}
    answer = client.post(
        f"{API}/tasks", json={"templateRef": "template:default/failover", "values": values}
    )
    answer.raise_for_status()
    return str(answer.json()["id"])


def workers(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM workers").fetchone()
    return int(row[0]) if row else 0


def listening(dsn: str) -> int:
    """How many Falsework LISTEN connections the server at ``dsn`` has."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'falsework-listener'"
        ).fetchone()
    return int(row[0]) if row else 0


def wait_until(predicate: Any, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"not in time: {what}"
        time.sleep(0.1)


def final_statuses(dsn: str, ids: list[str]) -> dict[str, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT id, status FROM tasks WHERE id = ANY(%s)", (ids,)).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


@pytest.mark.parametrize(
    "outage",
    [0.0, 5.0, 14.0],
    ids=["promoted-at-once", "promoted-after-5s", "promoted-past-the-stale-timeout"],
)
def test_the_primary_dies_mid_run_and_every_task_completes_once(
    pair: PgPair, recorder: Recorder, tmp_path: Path, outage: float
) -> None:
    url = pair.url("app")
    config = {**auth_config(), "egress": {"allow": ["127.0.0.0/8"]}}
    env = {"FALSEWORK_TEMPLATES": str(TEMPLATES), **TIMINGS}
    server = start_server(url, tmp_path / "serve", config=config, env=env, concurrency=40)
    worker = start_worker(url, tmp_path / "worker", tmp_path / "serve" / "falsework.yaml")
    headers = {"Authorization": f"Bearer {token_of('alice')}"}
    client = httpx.Client(base_url=server.url, headers=headers, timeout=10.0)
    try:
        app = pair.primary.dsn.rsplit("/", 1)[0] + "/app"
        wait_until(lambda: workers(app) == 2, "both nodes registered")
        ids = [create(client, recorder, 16) for _ in range(TASKS)]
        recorder.wait_for(TASKS)  # every task is in its wait step, on one node or the other
        pair.wait_replayed()
        fault = time.time()
        pair.primary.kill()
        time.sleep(outage)  # the failover manager noticing (Patroni's ttl, a managed service's)
        pair.standby.promote()
        promoted = time.time()
        late: list[str] = []
        api_back: float | None = None
        while len(late) < LATE:
            try:
                late.append(create(client, recorder, 2))
                api_back = api_back or time.time()
            except httpx.HTTPError:
                time.sleep(0.2)  # 503 (or a connection refused) while it fails over
            assert time.time() - fault < 120, "the API never accepted a task again"
        every = ids + late
        dsn = pair.standby.dsn.rsplit("/", 1)[0] + "/app"
        deadline = time.time() + 120
        while True:
            statuses = final_statuses(dsn, every)
            if all(s in ("completed", "failed", "cancelled") for s in statuses.values()) and len(
                statuses
            ) == len(every):
                break
            assert time.time() < deadline, Counter(statuses.values())
            time.sleep(0.2)
        figures = count(dsn, every, recorder, fault)
        # both nodes LISTEN again, on the new primary (wake-ups are not left to
        # polling); a listener may still be in its reconnect backoff when the last
        # task ends, so it is given until 30 s after the promotion
        while listening(dsn) < 2 and time.time() - promoted < 30:
            time.sleep(0.1)
        listeners_back = time.time() - promoted
        logs = [server.log, tmp_path / "worker" / "worker.log"]
        text = "\n".join(path.read_text(errors="replace") for path in logs)
        figures.update(
            {
                "outage_s": outage,
                "listeners_on_new_primary": listening(dsn),
                "listeners_back_s": round(listeners_back, 2),
                "log_lines": len(text.splitlines()),
                "tracebacks": text.count("Traceback"),
                "promote_s": round(promoted - fault, 2),
                "api_accepting_s": round((api_back or fault) - fault, 2),
                "stale_timeout_s": float(TIMINGS["FALSEWORK_STALE_TIMEOUT"]),
            }
        )
        (tmp_path / "failover.json").write_text(json.dumps(figures, indent=2))
        print("failover:", json.dumps(figures))
        assert figures["lost"] == 0
        assert figures["failed"] == 0, statuses
        assert figures["duplicate_events"] == 0
        assert figures["completions_not_one"] == 0
        # a side effect repeated only for a step in flight at the fault, with its key
        assert figures["repeated_with_another_key"] == 0
        assert worker.poll() is None and server.process.poll() is None  # both rode it out
        assert figures["listeners_on_new_primary"] == 2
        # pg_dump (libpq) follows the same URL to the new primary
        env = {**clean_env(), "FALSEWORK_DATABASE_URL": url, "FALSEWORK_DATA_DIR": str(tmp_path)}
        dump = tmp_path / "after-failover.backup"
        done = subprocess.run(
            [str(FALSEWORK), "db", "backup", str(dump)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and dump.stat().st_size > 0, done.stderr
    finally:
        client.close()
        worker.terminate()
        worker.wait(30)
        server.stop()


def count(dsn: str, ids: list[str], recorder: Recorder, fault: float) -> dict[str, Any]:
    """The scenario's figures, from the database and the recorder."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tasks = {
            str(r[0]): (str(r[1]), int(r[2]))
            for r in conn.execute(
                "SELECT id, status, attempt FROM tasks WHERE id = ANY(%s)", (ids,)
            ).fetchall()
        }
        events = conn.execute(
            "SELECT task_id, type, body::text, extract(epoch FROM created_at) FROM task_events "
            "WHERE task_id = ANY(%s) ORDER BY id",
            (ids,),
        ).fetchall()
    by_task: dict[str, list[tuple[str, str]]] = {}
    for task_id, kind, body, _ in events:
        by_task.setdefault(str(task_id), []).append((str(kind), str(body)))
    recovered = {t for t, evs in by_task.items() if any(k == "recovered" for k, _ in evs)}
    duplicates = 0
    for evs in by_task.values():
        # a run that starts again (recovered, or handed back and claimed anew) logs
        # its steps again, by design: events are compared within one run only
        seen: Counter[tuple[int, str, str]] = Counter()
        run = 0
        for kind, body in evs:
            if kind == "recovered" or '"Starting up task' in body:
                run += 1
            seen[(run, kind, body)] += 1
        duplicates += sum(n - 1 for n in seen.values() if n > 1)
    completions = Counter(str(t) for t, kind, _, _ in events if kind == "completion")
    after = [float(e[3]) for e in events if float(e[3]) > fault]
    effects: dict[tuple[str, str], list[str | None]] = {}
    for request in recorder.requests:
        task = (request.body or {}).get("task")
        effects.setdefault((str(task), request.path), []).append(request.header("Idempotency-Key"))
    repeated = sum(len(keys) - 1 for keys in effects.values())
    return {
        "tasks": len(ids),
        "lost": len(set(ids) - set(tasks)),
        "failed": sum(1 for status, _ in tasks.values() if status != "completed"),
        "recovered": len(recovered),
        "runs_restarted": sum(1 for _, attempt in tasks.values() if attempt > 1),
        "max_attempt": max((a for _, a in tasks.values()), default=0),
        "duplicate_events": duplicates,
        "completions_not_one": sum(1 for t in ids if completions[t] != 1),
        "side_effects_repeated": repeated,
        "repeated_with_another_key": sum(1 for keys in effects.values() if len(set(keys)) > 1),
        "writes_resumed_s": round(min(after) - fault, 2) if after else None,
    }
