"""Fault scenarios on real processes, counted from records the engine cannot touch.

One *lab* is a private Postgres cluster, a ``falsework serve`` API node (no
worker) and ``falsework worker`` processes, all real. Tasks run the ``chaos``
template: ``begin`` (an HTTP POST), ``work`` (a wait: the step in flight when a
fault strikes), ``effect`` (the side effect, a POST), ``settle`` (a short wait),
``end`` (a POST). Every POST reaches a loopback :class:`Recorder`, which appends
it, with its arrival time, to a per-run append-only file (flushed and fsync'd):
the independent record of step starts and side effects.

From that file and the database, :func:`count` gives a scenario's figures: lost
tasks, tasks failed by the fault, overlapping executions (two attempts of a task
active at once), duplicate events, repeated side effects (effect POSTs beyond
one per task; only runs in flight at the fault may repeat theirs) and the
recovery time (until every task the fault held runs again, or is done).

The same scenarios serve the chaos tests (``TEST`` timing, seconds) and
``bench/faults.py`` (``PRODUCTION`` timing, the defaults of docs/engine.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from support.chaos import NetNamespace, PgNode, TcpProxy, net_namespace, private_postgres
from support.serve import loopback_client

FALSEWORK = Path(sys.executable).with_name("falsework")
SECRET_KEY = "q0WZ3v0n1Fv7d9b5Qm1mKc5V4r6Hn3bJ8yq2tF3pG0E="

TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: chaos
  title: Chaos
spec:
  owner: group:default/chaos
  type: service
  parameters:
    - properties:
        recorder: {type: string}
        work: {type: number}
  steps:
    - id: begin
      action: http:request
      input:
        method: POST
        url: ${{ parameters.recorder }}/begin
        body: {task: "${{ context.task.id }}", attempt: "${{ context.task.attempt }}"}
    - id: work
      action: debug:wait
      input:
        seconds: ${{ parameters.work }}
    - id: effect
      action: http:request
      input:
        method: POST
        url: ${{ parameters.recorder }}/effect
        body: {task: "${{ context.task.id }}", attempt: "${{ context.task.attempt }}"}
    - id: settle
      action: debug:wait
      input:
        seconds: 0.2
    - id: end
      action: http:request
      input:
        method: POST
        url: ${{ parameters.recorder }}/end
        body: {task: "${{ context.task.id }}", attempt: "${{ context.task.attempt }}"}
"""


@dataclass(frozen=True)
class Timing:
    heartbeat: float
    stale: float
    janitor: float
    work: float  # the in-flight step's wait
    outage: float  # the long outage, longer than the stale timeout
    tasks: int

    def env(self) -> dict[str, str]:
        return {
            "FALSEWORK_HEARTBEAT_INTERVAL": str(self.heartbeat),
            "FALSEWORK_STALE_TIMEOUT": str(self.stale),
            "FALSEWORK_JANITOR_INTERVAL": str(self.janitor),
            "FALSEWORK_POLL_INTERVAL": str(min(1.0, self.heartbeat)),
            "FALSEWORK_MAX_POLL_INTERVAL": str(min(5.0, 2 * self.heartbeat)),
            "FALSEWORK_SHUTDOWN_GRACE": "2",
        }


# short enough for the test suite; the lease is 2/3 of the stale timeout
TEST = Timing(heartbeat=0.3, stale=3.0, janitor=0.3, work=1.5, outage=4.5, tasks=8)
# the defaults of docs/engine.md, and an outage of 25 s
PRODUCTION = Timing(heartbeat=2.0, stale=15.0, janitor=2.0, work=6.0, outage=25.0, tasks=20)


# ------------------------------------------------------------------ the record


class Recorder:
    """A loopback HTTP server appending every POST to ``path`` (one JSON line:
    arrival time, path, body), flushed and fsync'd before it answers."""

    def __init__(self, path: Path, host: str = "0.0.0.0") -> None:
        self.path = path
        lock = threading.Lock()
        out = path.open("a")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(size)
                if len(raw) < size:
                    # the client went away mid-body (its run was stopped while
                    # sending): a request never received whole is no side effect
                    return
                body = json.loads(raw or b"{}")
                line = json.dumps({"t": time.time(), "step": self.path.strip("/"), **body})
                with lock:
                    out.write(line + "\n")
                    out.flush()
                    os.fsync(out.fileno())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # every run's POST may come at once: the default backlog of 5 resets
            # connections (seen as failed steps, not a fault of the engine)
            request_queue_size = 512

        self._out = out
        self._server = Server((host, 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._out.close()


# ------------------------------------------------------------------ the figures


@dataclass
class Figures:
    scenario: str
    tasks: int
    lost: int = 0
    failed: int = 0
    overlapping: int = 0
    duplicate_events: int = 0
    repeated_effects: int = 0
    in_flight: int = 0  # tasks held by the fault's victim (or running) at the fault
    recovery_s: float | None = None
    superseded: int = 0  # runs that left a superseded marker
    notes: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "notes"}


def _overlaps(records: list[dict[str, Any]]) -> int:
    """Pairs of attempts of one task whose recorded activity overlaps in time."""
    spans: dict[tuple[str, str], list[float]] = {}
    for r in records:
        span = spans.setdefault((r["task"], str(r["attempt"])), [r["t"], r["t"]])
        span[0], span[1] = min(span[0], r["t"]), max(span[1], r["t"])
    by_task: dict[str, list[list[float]]] = {}
    for (task, _attempt), span in spans.items():
        by_task.setdefault(task, []).append(span)
    found = 0
    for spans_of in by_task.values():
        spans_of.sort()
        for i, (start, _end) in enumerate(spans_of):
            found += sum(1 for _s, end in spans_of[:i] if start < end)
    return found


def _duplicates(events: list[tuple[str, str, str]], attempts: dict[str, int]) -> int:
    """Events written twice: more 'Starting up' lines than a task had attempts,
    or one event twice within one run's stretch of the log."""
    found = 0
    seen: dict[str, set[tuple[str, str]]] = {}
    starts: dict[str, int] = {}
    for task, type_, body in events:
        if "Starting up task" in body:
            starts[task] = starts.get(task, 0) + 1
            seen[task] = set()
        key = (type_, body)
        bucket = seen.setdefault(task, set())
        if key in bucket and "superseded" not in body:
            found += 1
        bucket.add(key)
    found += sum(max(0, n - attempts.get(task, 0)) for task, n in starts.items())
    return found


def count(
    scenario: str,
    url: str,
    ids: list[str],
    records: list[dict[str, Any]],
    *,
    in_flight: int,
    recovery_s: float | None,
) -> Figures:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, status, attempt FROM tasks WHERE id = ANY(%s)", (ids,)
        ).fetchall()
        events = conn.execute(
            "SELECT task_id, type, body::text FROM task_events WHERE task_id = ANY(%s) ORDER BY id",
            (ids,),
        ).fetchall()
    status = {r[0]: r[1] for r in rows}
    attempts = {r[0]: int(r[2]) for r in rows}
    effects: dict[str, int] = {}
    for r in records:
        if r["step"] == "effect":
            effects[r["task"]] = effects.get(r["task"], 0) + 1
    return Figures(
        scenario=scenario,
        tasks=len(ids),
        lost=sum(1 for t in ids if status.get(t) not in ("completed", "failed", "cancelled")),
        failed=sum(1 for t in ids if status.get(t) in ("failed", "cancelled")),
        overlapping=_overlaps([r for r in records if r["task"] in status]),
        duplicate_events=_duplicates([(t, ty, b) for t, ty, b in events], attempts),
        repeated_effects=sum(max(0, n - 1) for n in effects.values()),
        in_flight=in_flight,
        recovery_s=recovery_s,
        superseded=sum(1 for _t, _ty, b in events if '"superseded"' in b),
    )


# ------------------------------------------------------------------ the lab


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    worker_id: str = ""


class Lab:
    """A private Postgres, an API node, workers, a recorder; torn down by close()."""

    def __init__(self, root: Path, timing: Timing, *, recorder_host: str = "127.0.0.1") -> None:
        self.root = root
        self.timing = timing
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        self.pg: PgNode = private_postgres(root / "pg")
        with psycopg.connect(self.pg.dsn, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "lab"')
        self.url = f"postgresql://postgres@127.0.0.1:{self.pg.port}/lab"
        self.recorder = Recorder(root / "record.jsonl")
        self.recorder_url = f"http://{recorder_host}:{self.recorder.port}"
        templates = root / "templates" / "chaos"
        templates.mkdir(parents=True)
        (templates / "template.yaml").write_text(TEMPLATE)
        config = root / "falsework.yaml"
        config.write_text(yaml.safe_dump({"egress": {"allow": ["127.0.0.1", "10.211.0.0/16"]}}))
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FALSEWORK_")},
            **timing.env(),
            "FALSEWORK_SECRET_KEY": SECRET_KEY,
            "FALSEWORK_CONFIG": str(config),
            "FALSEWORK_TEMPLATES": str(root / "templates"),
        }
        self.workers: list[Worker] = []
        self.proxies: list[TcpProxy] = []
        self.api = self._serve()

    # processes -------------------------------------------------------------
    def _serve(self) -> str:
        port = _free_port()
        log = self.root / "serve.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(FALSEWORK), "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--concurrency", "0", "--log-level", "warning"],
                env={**self._env, "FALSEWORK_DATABASE_URL": self.url,
                     "FALSEWORK_DATA_DIR": str(self.root / "serve")},
                cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._serve_process = process
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        with loopback_client(timeout=1) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"serve exited:\n{log.read_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{url}/healthz").status_code == 200:
                        return url
                if time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start:\n{log.read_text()}")
                time.sleep(0.1)

    def worker(
        self,
        name: str,
        *,
        concurrency: int = 50,
        db_url: str | None = None,
        netns: NetNamespace | None = None,
    ) -> Worker:
        """Start ``falsework worker`` (in ``netns`` when given) and wait until it
        has registered."""
        log = self.root / f"worker-{name}.log"
        command = [str(FALSEWORK), "worker", "--concurrency", str(concurrency)]
        if netns is not None:
            command = netns.command(*command)
        env = {
            **self._env,
            "FALSEWORK_DATABASE_URL": db_url or self.url,
            "FALSEWORK_DATA_DIR": str(self.root / f"data-{name}"),
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, env=env, cwd=self.root, stdout=out, stderr=subprocess.STDOUT
            )
        worker = Worker(name, process, log)
        self.workers.append(worker)
        deadline = time.monotonic() + 60
        while not worker.worker_id:
            if process.poll() is not None:
                raise RuntimeError(f"worker {name} exited:\n{log.read_text()}")
            found = self.sql("SELECT id FROM workers WHERE pid = %s", (process.pid,))
            if found:
                worker.worker_id = str(found[0][0])
            elif time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not register:\n{log.read_text()}")
            else:
                time.sleep(0.05)
        return worker

    def proxy(self, listen_host: str = "127.0.0.1") -> TcpProxy:
        proxy = TcpProxy(("127.0.0.1", self.pg.port), (listen_host, 0))
        self.proxies.append(proxy)
        return proxy

    def url_via(self, proxy: TcpProxy) -> str:
        host, port = proxy.address
        return f"postgresql://postgres@{host}:{port}/lab"

    # tasks -----------------------------------------------------------------
    def submit(self, n: int) -> list[str]:
        values = {"recorder": self.recorder_url, "work": self.timing.work}
        ids = []
        with httpx.Client(base_url=self.api, timeout=30) as client:
            for _ in range(n):
                answer = client.post(
                    "/api/scaffolder/v2/tasks",
                    json={"templateRef": "template:default/chaos", "values": values},
                )
                answer.raise_for_status()
                ids.append(answer.json()["id"])
        return ids

    def set_limit(self, worker: Worker, limit: int) -> None:
        """Change a running worker's limit through the API (read at its next heartbeat)."""
        with httpx.Client(base_url=self.api, timeout=30) as client:
            answer = client.patch(
                f"/api/scaffolder/v2/workers/{worker.worker_id}", json={"limit": limit}
            )
            answer.raise_for_status()

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        for attempt in range(50):
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=2) as conn:
                    return list(conn.execute(query, params).fetchall())  # type: ignore[arg-type]
            except psycopg.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def wait_until(self, what: Callable[[], bool], within: float, why: str) -> None:
        deadline = time.monotonic() + within
        while not what():
            if time.monotonic() > deadline:
                raise AssertionError(f"{why}: not within {within:g}s\n{self.logs()}")
            time.sleep(0.1)

    def begun(self, ids: list[str]) -> bool:
        started = {r["task"] for r in self.recorder.records() if r["step"] == "begin"}
        return started >= set(ids)

    def held_by(self, worker: Worker) -> dict[str, int]:
        rows = self.sql(
            "SELECT id, attempt FROM tasks WHERE claimed_by = %s AND status = 'processing'",
            (worker.worker_id,),
        )
        return {r[0]: int(r[1]) for r in rows}

    def final(self, ids: list[str]) -> bool:
        rows = self.sql(
            "SELECT count(*) FROM tasks WHERE id = ANY(%s) "
            "AND status IN ('completed', 'failed', 'cancelled')",
            (ids,),
        )
        return bool(rows[0][0] == len(ids))

    def watch_recovery(self, held: dict[str, int], victim: Worker | None) -> Callable[[], float]:
        """Start timing now: returns a function that waits until every held task
        is done or runs again (a fresh heartbeat, not the victim's) and returns
        the seconds that took."""
        started = time.monotonic()
        since = self.sql("SELECT now()")[0][0]
        result: list[float] = []

        def poll() -> None:
            pending = set(held)
            while pending:
                with contextlib.suppress(psycopg.Error):
                    rows = self.sql(
                        "SELECT id FROM tasks WHERE id = ANY(%s) AND (status = 'completed' "
                        "OR (status = 'processing' AND heartbeat_at > %s "
                        "AND claimed_by IS DISTINCT FROM %s))",
                        (list(pending), since, victim.worker_id if victim else None),
                    )
                    pending -= {r[0] for r in rows}
                if pending:
                    time.sleep(0.1)
            result.append(time.monotonic() - started)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()

        def wait() -> float:
            thread.join(self.timing.stale * 6 + 60)
            if not result:
                raise AssertionError(f"held tasks never ran again\n{self.logs()}")
            return result[0]

        return wait

    def logs(self) -> str:
        tails = []
        for w in self.workers:
            text = w.log.read_text(errors="replace") if w.log.exists() else ""
            tails.append(f"--- worker {w.name}\n" + "\n".join(text.splitlines()[-40:]))
        return "\n".join(tails)

    def close(self) -> None:
        for w in self.workers:
            if w.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    w.process.send_signal(signal.SIGCONT)
                w.process.kill()
            w.process.wait(10)
        self._serve_process.kill()
        self._serve_process.wait(10)
        for proxy in self.proxies:
            proxy.close()
        self.recorder.close()
        self.pg.stop("immediate")
        shutil.rmtree(self.root / "pg", ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ scenarios


def _victim_holds_all(lab: Lab, victim: Worker) -> tuple[list[str], dict[str, int]]:
    """Tasks submitted while only ``victim`` claims, each begun there; then a
    survivor (started idle, its janitor already watching) may claim too."""
    survivor = lab.worker("survivor", concurrency=0)
    ids = lab.submit(lab.timing.tasks)
    lab.wait_until(lambda: lab.begun(ids), 60, "every task begun on the victim")
    held = lab.held_by(victim)
    lab.set_limit(survivor, 50)
    return ids, held


def _finish(lab: Lab, name: str, ids: list[str], held: dict[str, int], wait: Any) -> Figures:
    recovery = wait()
    lab.wait_until(lambda: lab.final(ids), lab.timing.stale * 4 + 60, "every task final")
    return count(
        name, lab.url, ids, lab.recorder.records(), in_flight=len(held), recovery_s=recovery
    )


def kill9(lab: Lab) -> Figures:
    victim = lab.worker("victim")
    ids, held = _victim_holds_all(lab, victim)
    wait = lab.watch_recovery(held, victim)
    victim.process.kill()
    return _finish(lab, "kill -9 of a worker", ids, held, wait)


def sigstop(lab: Lab) -> Figures:
    victim = lab.worker("victim")
    ids, held = _victim_holds_all(lab, victim)
    wait = lab.watch_recovery(held, victim)
    victim.process.send_signal(signal.SIGSTOP)
    time.sleep(lab.timing.stale + 2)
    victim.process.send_signal(signal.SIGCONT)
    return _finish(lab, "SIGSTOP past the stale timeout", ids, held, wait)


def freeze(lab: Lab) -> Figures:
    """The victim's database link freezes (a TCP proxy stops moving bytes: any
    transaction it had open stays open) for longer than the stale timeout."""
    proxy = lab.proxy()
    victim = lab.worker("victim", db_url=lab.url_via(proxy))
    ids, held = _victim_holds_all(lab, victim)
    wait = lab.watch_recovery(held, victim)
    proxy.freeze()
    time.sleep(lab.timing.stale + 2)
    proxy.thaw()
    return _finish(lab, "worker frozen mid-transaction (TCP proxy)", ids, held, wait)


def partition(lab: Lab) -> Figures:
    """The victim runs in its own network namespace; its link is cut for longer
    than the stale timeout, then healed (it reaches Postgres and the recorder
    through the host side of the veth pair)."""
    with net_namespace() as ns:
        proxy = lab.proxy(ns.host_ip)
        lab.recorder_url = f"http://{ns.host_ip}:{lab.recorder.port}"
        victim = lab.worker("victim", db_url=lab.url_via(proxy), netns=ns)
        ids, held = _victim_holds_all(lab, victim)
        wait = lab.watch_recovery(held, victim)
        ns.partition()
        time.sleep(lab.timing.stale + 2)
        ns.heal()
        figures = _finish(lab, "worker partitioned (netns)", ids, held, wait)
        victim.process.kill()
        victim.process.wait(10)
    return figures


def _running(lab: Lab) -> tuple[list[str], dict[str, int]]:
    lab.worker("a")
    lab.worker("b")
    ids = lab.submit(lab.timing.tasks)
    lab.wait_until(lambda: lab.begun(ids), 60, "every task begun")
    rows = lab.sql("SELECT id, attempt FROM tasks WHERE status = 'processing'")
    return ids, {r[0]: int(r[1]) for r in rows}


def pg_restart(lab: Lab) -> Figures:
    ids, held = _running(lab)
    lab.pg.stop("fast")
    lab.pg.start()
    wait = lab.watch_recovery(held, None)
    return _finish(lab, "Postgres restart", ids, held, wait)


def pg_outage(lab: Lab) -> Figures:
    ids, held = _running(lab)
    lab.pg.stop("fast")
    time.sleep(lab.timing.outage)
    lab.pg.start()
    wait = lab.watch_recovery(held, None)
    name = f"Postgres down {lab.timing.outage:g} s (> stale timeout)"
    return _finish(lab, name, ids, held, wait)


def terminate_backends(lab: Lab) -> Figures:
    ids, held = _running(lab)
    wait = lab.watch_recovery(held, None)
    with psycopg.connect(lab.url, autocommit=True) as conn:
        for _ in range(15):
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = 'lab' AND pid <> pg_backend_pid()"
            )
            time.sleep(0.2)
    return _finish(lab, "pg_terminate_backend x15", ids, held, wait)


SCENARIOS: dict[str, Callable[[Lab], Figures]] = {
    "kill9": kill9,
    "sigstop": sigstop,
    "freeze": freeze,
    "partition": partition,
    "pg_restart": pg_restart,
    "pg_outage": pg_outage,
    "terminate": terminate_backends,
}


@contextlib.contextmanager
def lab(root: Path, timing: Timing) -> Iterator[Lab]:
    made = Lab(root, timing)
    try:
        yield made
    finally:
        made.close()
