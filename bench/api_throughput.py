"""Benchmark 7a (issue 4): throughput through the HTTP API.

One ``falsework serve`` process (API + worker, concurrency 100) on a fresh database;
8 concurrent HTTP clients (keep-alive connections, a minimal hand-written HTTP/1.1
client so the load generator takes little of the 2 cores) create 1,000 single-step
``debug:log`` tasks (template ``bench/templates/bench-log``, the shape Backstage was
measured with) through
``POST /api/scaffolder/v2/tasks``; the clock stops when the last one completed.
tasks/s = 1,000 / (first POST sent → last task's ``finished_at``). Reported with
the POST latency, on SQLite and Postgres. Backstage scaffolder-backend 4.3.0 on
this machine: 18.5 tasks/s (SQLite), 38.5 (Postgres); target ≥ 20x both.

    python -m bench.api_throughput [--tasks 1000] [--clients 8] [--db sqlite,postgres]
                                   [--quick]
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
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import fw
from bench.common import emit, latency_summary, log, run
from bench.procs import free_port, start_server

BACKSTAGE = {"sqlite": 18.5, "postgres": 38.5}  # tasks/s, scaffolder-backend 4.3.0
BACKSTAGE_POST_P50_MS = {"sqlite": 409.0, "postgres": 128.0}
FACTOR = 20.0
TEMPLATE_REF = "template:default/bench-log"


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
                server_cpu0 = _cpu(psutil.Process(server.pid).cpu_times())
                client_cpu0 = _cpu(os.times())
                result = await drive(base, url, tasks, clients)
                result["server_cpu_s"] = _cpu(psutil.Process(server.pid).cpu_times()) - server_cpu0
                result["client_cpu_s"] = _cpu(os.times()) - client_cpu0
            finally:
                code = await server.stop(grace=60)
            result["server_exit"] = code
            if code != 0:
                result["server_log_tail"] = (work / "serve.log").read_text()[-2000:]
            return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


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


async def drive(base: str, url: str, tasks: int, clients: int) -> dict[str, Any]:
    post_ms: list[float] = []
    errors: list[str] = []
    remaining = tasks
    host_port = base.split("//", 1)[1]
    host, port = host_port.rsplit(":", 1)

    async def client_loop(conn: Connection, n: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            body = {"templateRef": TEMPLATE_REF, "values": {"name": f"world {n}"}}
            t0 = time.perf_counter()
            status, text = await conn.post_json(host_port, "/api/scaffolder/v2/tasks", body)
            post_ms.append((time.perf_counter() - t0) * 1000.0)
            if status != 201:
                errors.append(f"{status} {text[:200]!r}")

    async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:
        await client.get("/api/scaffolder/v2/templates/default/template/bench-log/parameter-schema")
    conns = [await Connection.open(host, int(port)) for _ in range(clients)]
    try:
        first_post = time.time()
        t0 = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(client_loop(c, i) for i, c in enumerate(conns))),
            timeout=max(120.0, tasks / 5),
        )
        posted_s = time.perf_counter() - t0
    finally:
        for c in conns:
            await c.close()
    done = 0
    deadline = time.monotonic() + max(120.0, tasks / 5)
    while time.monotonic() < deadline:
        (done,) = (
            await fw.sql(url, "SELECT count(*) FROM tasks WHERE status IN ('completed', 'failed')")
        )[0]
        if done >= tasks:
            break
        await asyncio.sleep(0.05)
    statuses = dict(await fw.sql(url, "SELECT status, count(*) FROM tasks GROUP BY status"))
    (last,) = (await fw.sql(url, "SELECT max(finished_at) FROM tasks"))[0]
    elapsed = (fw.ts(last) - first_post) if last is not None else float("nan")
    completed = int(statuses.get("completed", 0))
    return {
        "tasks_per_s": completed / elapsed if elapsed > 0 else 0.0,
        "elapsed_s": elapsed,
        "posted_s": posted_s,
        "statuses": statuses,
        "completed": completed,
        "post": latency_summary(post_ms),
        "errors": errors[:5],
        "error_count": len(errors),
    }


async def measure(args: argparse.Namespace) -> None:
    for kind in args.db:
        r = await one_run(kind, args.tasks, args.clients, args.concurrency)
        log(f"{kind}: {r}")
        target = BACKSTAGE[kind] * FACTOR
        value = round(r["tasks_per_s"], 1)
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
            server_cpu_ms_per_task=round(r["server_cpu_s"] * 1000 / max(1, args.tasks), 2),
            client_cpu_ms_per_task=round(r["client_cpu_s"] * 1000 / max(1, args.tasks), 2),
            backstage_tasks_per_s=BACKSTAGE[kind],
            backstage_post_p50_ms=BACKSTAGE_POST_P50_MS[kind],
            times_backstage=round(value / BACKSTAGE[kind], 1),
            target_tasks_per_s=target,
            ok=value >= target and r["completed"] == args.tasks,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="throughput through the API (issue 4)")
    parser.add_argument("--tasks", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    args.db = [d for d in args.db.split(",") if d]
    if args.quick:
        args.tasks = 200
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
