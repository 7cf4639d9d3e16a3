"""Benchmark 7a (issues 4, 17): throughput through the HTTP API, beside Backstage.

One ``falsework serve`` process (API + worker, concurrency 100) on a fresh database;
8 concurrent HTTP clients (keep-alive connections, a minimal hand-written HTTP/1.1
client so the load generator takes little of the 2 cores) create 1,000 single-step
``debug:log`` tasks (template ``bench/templates/bench-log``) through
``POST /api/scaffolder/v2/tasks``; the clock stops when the last one completed.
tasks/s = 1,000 / (first POST sent → last task's ``finished_at``). Then, in the same
run and with the same client, the real Backstage scaffolder (the oracle in
``../shared/tools/backstage-oracle``, its default worker concurrency of 10) on a
fresh database of the same kind, 500 tasks of template ``debug-log`` (the same
step; Backstage runs at tens of tasks per second, so fewer tasks); its clock
stops when its task list counts every task completed (polled every 0.1 s). Reported
for both: POST latency, the server process's CPU per task and its idle RSS.

    python -m bench.api_throughput [--tasks 1000] [--clients 8] [--db sqlite,postgres]
                                   [--no-backstage] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import backstage, fw
from bench.common import emit, latency_summary, log, run
from bench.procs import free_port, start_server

FACTOR = 30.0  # issue 17: at least 30x the real Backstage, measured in the same run
TEMPLATE_REF = "template:default/bench-log"
BACKSTAGE_REF = "template:default/debug-log"
IDLE_SETTLE_S = 2.0  # after the server answers, before its idle RSS is read


def _cpu(times: Any) -> float:
    return float(times.user + times.system)


async def wait_healthy(base: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{base} did not become healthy within {within:.0f} s")


async def one_run(kind: str, tasks: int, clients: int, concurrency: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    (work / "falsework.yaml").write_text("{}\n", encoding="utf-8")
    try:
        async with fw.database(kind, "fw_api") as url:
            port = free_port()
            env = fw.env_for(
                url,
                FALSEWORK_DATA_DIR=str(work / "data"),
                FALSEWORK_CONFIG=str(work / "falsework.yaml"),
            )
            server = await start_server(
                ["serve", "--port", str(port), "--concurrency", str(concurrency)],
                env=env,
                log_path=work / "serve.log",
                name="serve",
            )
            base = f"http://127.0.0.1:{port}"
            try:
                await wait_healthy(base)
                proc = psutil.Process(server.pid)
                idle_rss = await _idle_rss(proc)
                async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:
                    await client.get(
                        "/api/scaffolder/v2/templates/default/template/bench-log/parameter-schema"
                    )

                async def completed() -> int:
                    (done,) = (
                        await fw.sql(
                            url,
                            "SELECT count(*) FROM tasks WHERE status IN ('completed', 'failed')",
                        )
                    )[0]
                    return int(done)

                result = await drive(base, TEMPLATE_REF, tasks, clients, proc, completed)
                statuses = dict(
                    await fw.sql(url, "SELECT status, count(*) FROM tasks GROUP BY status")
                )
                (last,) = (await fw.sql(url, "SELECT max(finished_at) FROM tasks"))[0]
            finally:
                code = await server.stop(grace=60)
            # the server's own clock: first POST sent -> last task finished
            elapsed = (fw.ts(last) - result["first_post"]) if last is not None else float("nan")
            result.update(
                idle_rss_mb=idle_rss,
                statuses=statuses,
                completed=int(statuses.get("completed", 0)),
                elapsed_s=elapsed,
                server_exit=code,
            )
            result["tasks_per_s"] = result["completed"] / elapsed if elapsed > 0 else 0.0
            if code != 0:
                result["server_log_tail"] = (work / "serve.log").read_text()[-2000:]
            return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def backstage_run(kind: str, tasks: int, clients: int) -> dict[str, Any]:
    """The same load on the real Backstage scaffolder, started fresh on ``kind``."""
    async with backstage.running(kind, free_port()) as oracle:
        proc = psutil.Process(oracle.pid)
        idle_rss = await _idle_rss(proc)
        async with httpx.AsyncClient(base_url=oracle.base, timeout=60.0) as client:

            async def completed() -> int:
                resp = await client.get(
                    "/api/scaffolder/v2/tasks", params={"status": "completed", "limit": 1}
                )
                resp.raise_for_status()
                return int(resp.json()["totalTasks"])

            result = await drive(oracle.base, BACKSTAGE_REF, tasks, clients, proc, completed)
            done = await completed()
    elapsed = result["done_at"] - result["first_post"]
    result.update(
        idle_rss_mb=idle_rss,
        completed=done,
        elapsed_s=elapsed,
        tasks_per_s=done / elapsed if elapsed > 0 else 0.0,
    )
    return result


async def _idle_rss(proc: psutil.Process) -> float:
    await asyncio.sleep(IDLE_SETTLE_S)
    return round(proc.memory_info().rss / 2**20, 1)


class Connection:
    """One keep-alive HTTP/1.1 connection, written by hand: a load generator that
    costs the 2-core machine as little CPU as possible (httpx cost more CPU per
    request than the server it was measuring)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def post_json(self, host: str, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        self.writer.write(head.encode() + payload)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            key = name.strip().lower()
            if key == "content-length":
                length = int(value.strip())
            elif key == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        data = b""
        while True:
            size = int((await self.reader.readline()).strip() or b"0", 16)
            if size == 0:
                await self.reader.readline()
                return status, data
            data += await self.reader.readexactly(size)
            await self.reader.readexactly(2)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def drive(
    base: str,
    template_ref: str,
    tasks: int,
    clients: int,
    server: psutil.Process,
    completed: Callable[[], Awaitable[int]],
) -> dict[str, Any]:
    """POST ``tasks`` tasks from ``clients`` connections, then poll ``completed``
    until every task is done; the server's CPU over the whole of it."""
    post_ms: list[float] = []
    errors: list[str] = []
    remaining = tasks
    host_port = base.split("//", 1)[1]
    host, port = host_port.rsplit(":", 1)

    async def client_loop(conn: Connection, n: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            body = {"templateRef": template_ref, "values": {"name": f"world {n}"}}
            t0 = time.perf_counter()
            status, text = await conn.post_json(host_port, "/api/scaffolder/v2/tasks", body)
            post_ms.append((time.perf_counter() - t0) * 1000.0)
            if status != 201:
                errors.append(f"{status} {text[:200]!r}")

    conns = [await Connection.open(host, int(port)) for _ in range(clients)]
    server_cpu0 = _cpu(server.cpu_times())
    client_cpu0 = _cpu(os.times())
    try:
        first_post = time.time()
        t0 = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(client_loop(c, i) for i, c in enumerate(conns))),
            timeout=max(120.0, tasks / 2),
        )
        posted_s = time.perf_counter() - t0
    finally:
        for c in conns:
            await c.close()
    deadline = time.monotonic() + max(120.0, tasks / 2)
    while time.monotonic() < deadline and await completed() < tasks:  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # another process's progress: nothing to wait on here
    done_at = time.time()
    return {
        "first_post": first_post,
        "done_at": done_at,
        "posted_s": posted_s,
        "post": latency_summary(post_ms),
        "errors": errors[:5],
        "error_count": len(errors),
        "server_cpu_s": _cpu(server.cpu_times()) - server_cpu0,
        "client_cpu_s": _cpu(os.times()) - client_cpu0,
    }


async def measure(args: argparse.Namespace) -> None:
    oracle_note = None
    if args.backstage:
        try:
            took = await backstage.setup()
            log(f"backstage oracle ready in {took:.0f} s ({backstage.oracle_dir()})")
        except backstage.OracleUnavailable as exc:
            oracle_note = str(exc)
            log(f"backstage skipped: {oracle_note}")
    # what the caller's shell would have changed in the server, kept from it (fw.env_for)
    dropped = sorted(k for k in os.environ if fw.costly(k))
    if dropped:
        log(f"not passed to the server: {', '.join(dropped)}")
    for kind in args.db:
        load_before = round(os.getloadavg()[0], 1)
        r = await one_run(kind, args.tasks, args.clients, args.concurrency)
        log(f"{kind}: falsework {r}")
        b: dict[str, Any] | None = None
        if args.backstage and oracle_note is None:
            try:
                b = await backstage_run(kind, args.backstage_tasks, args.clients)
                log(f"{kind}: backstage {b}")
            except backstage.OracleUnavailable as exc:
                log(f"backstage on {kind} failed: {exc}")
        value = round(r["tasks_per_s"], 1)
        per_task = max(1, args.tasks)
        extra: dict[str, Any] = {}
        if b is not None:
            times = value / b["tasks_per_s"] if b["tasks_per_s"] > 0 else None
            extra = dict(
                backstage_version=backstage.VERSION,
                backstage_tasks_per_s=round(b["tasks_per_s"], 1),
                backstage_tasks=args.backstage_tasks,
                backstage_completed=b["completed"],
                backstage_post_p50_ms=b["post"]["p50_ms"],
                backstage_post_p99_ms=b["post"]["p99_ms"],
                backstage_http_errors=b["error_count"],
                backstage_server_cpu_ms_per_task=round(
                    b["server_cpu_s"] * 1000 / max(1, args.backstage_tasks), 2
                ),
                backstage_idle_rss_mb=b["idle_rss_mb"],
                times_backstage=round(times, 1) if times is not None else None,
            )
        emit(
            "api_throughput",
            "falsework",
            "tasks_per_s",
            value,
            db=kind,
            tasks=args.tasks,
            clients=args.clients,
            worker_concurrency=args.concurrency,
            completed=r["completed"],
            statuses=r["statuses"],
            post_p50_ms=r["post"]["p50_ms"],
            post_p99_ms=r["post"]["p99_ms"],
            all_posted_s=round(r["posted_s"], 2),
            http_errors=r["error_count"],
            error_samples=r["errors"],
            server_exit=r["server_exit"],
            server_cpu_ms_per_task=round(r["server_cpu_s"] * 1000 / per_task, 2),
            client_cpu_ms_per_task=round(r["client_cpu_s"] * 1000 / per_task, 2),
            idle_rss_mb=r["idle_rss_mb"],
            load_avg=round(os.getloadavg()[0], 1),
            load_avg_before=load_before,
            server_env_dropped=dropped,
            backstage_note=oracle_note,
            target_times_backstage=FACTOR,
            **extra,
            ok=(
                b is not None
                and extra.get("times_backstage") is not None
                and extra["times_backstage"] >= FACTOR
                and r["completed"] == args.tasks
            ),
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="throughput through the API, beside Backstage")
    parser.add_argument("--tasks", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument(
        "--no-backstage", dest="backstage", action="store_false", help="Falsework alone"
    )
    parser.add_argument(
        "--backstage-tasks",
        type=int,
        default=500,
        help="tasks for Backstage (it runs at tens per second: 500, as its own measurement)",
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    args.db = [d for d in args.db.split(",") if d]
    if args.quick:
        args.tasks = args.backstage_tasks = 200
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
