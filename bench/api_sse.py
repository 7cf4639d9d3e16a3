"""Benchmark 7b (issue 4): 1,000 concurrent SSE clients on one API process.

An API-only ``falsework serve --concurrency 0`` on a fresh Postgres database; 1,000
tasks of template ``bench-sse`` (log, wait, log, wait, log) are created through the
API; 1,000 clients open ``GET /v2/tasks/{id}/eventstream`` (one per task) and stay
connected; only then a separate worker process (``bench.worker_proc``, concurrency
1,000) starts running the tasks, so every event travels worker → Postgres (NOTIFY)
→ API process → client. Each stream must carry exactly the task's events as stored
in ``task_events`` (same ids, same order: no gap, no duplicate) and end after the
completion. Also reported: push delay (event ``createdAt`` → received), the API
process's peak RSS.

The clients are plain asyncio HTTP/1.1 connections (chunked SSE parsed by hand), so
1,000 of them cost the benchmark process little CPU on this 2-core machine.

    python -m bench.api_sse [--clients 1000] [--seconds 2] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psutil

from bench import fw
from bench.api_throughput import wait_healthy
from bench.common import emit, latency_summary, log, run
from bench.procs import free_port, start_server, start_worker

TEMPLATE_REF = "template:default/bench-sse"
# issue 17: push delay while 1,000 tasks start at once
TARGET_P50_MS, TARGET_P99_MS = 20.0, 100.0


@dataclass
class Stream:
    task_id: str
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    events: list[tuple[int, str, float, float]] = field(default_factory=list)  # id, type, sent, got
    status: int = 0
    error: str | None = None
    ended: bool = False


def _parse_block(block: str, stream: Stream, received: float) -> None:
    ev_id: int | None = None
    ev_type = "message"
    data = ""
    for line in block.split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            ev_id = int(value)
        elif name == "event":
            ev_type = value
        elif name == "data":
            data += value
    if ev_id is None:
        return
    sent = float("nan")
    with contextlib.suppress(ValueError, KeyError, TypeError):
        created = json.loads(data)["createdAt"]
        sent = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    stream.events.append((ev_id, ev_type, sent, received))


async def follow(host: str, port: int, stream: Stream, within: float) -> None:
    """One SSE client: GET the stream, parse chunks until the server closes it."""
    path = f"/api/scaffolder/v2/tasks/{stream.task_id}/eventstream"
    writer = None
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(host, port)
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Accept: text/event-stream\r\nConnection: close\r\n\r\n"
            )
            writer.write(request.encode())
            status_line = await reader.readline()
            stream.status = int(status_line.split()[1])
            chunked = False
            while True:
                header = await reader.readline()
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.decode("latin-1").partition(":")
                if name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
            buf = ""
            while True:
                if chunked:
                    size_line = await reader.readline()
                    if not size_line:
                        break
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        break
                    chunk = await reader.readexactly(size)
                    await reader.readexactly(2)
                else:
                    chunk = await reader.read(65536)
                    if not chunk:
                        break
                stream.connected.set()
                buf += chunk.decode()
                received = time.time()
                while "\n\n" in buf:
                    block, buf = buf.split("\n\n", 1)
                    _parse_block(block, stream, received)
            stream.ended = True
    except Exception as exc:  # recorded per client and reported, never fatal
        stream.error = f"{type(exc).__name__}: {exc}"
    finally:
        stream.connected.set()
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def create_tasks(base: str, n: int, seconds: float) -> list[str]:
    ids: list[str] = []
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:

        async def one(i: int) -> str:
            body = {"templateRef": TEMPLATE_REF, "values": {"name": f"t{i}", "seconds": seconds}}
            resp = await client.post("/api/scaffolder/v2/tasks", json=body)
            resp.raise_for_status()
            return str(resp.json()["id"])

        for start in range(0, n, 100):
            ids.extend(await asyncio.gather(*(one(i) for i in range(start, min(n, start + 100)))))
    return ids


async def sample_rss(pid: int, peak: list[float], stop: asyncio.Event) -> None:
    try:
        proc = psutil.Process(pid)
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss / 2**20)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.25)
    except psutil.Error:
        return


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


async def measure(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    (work / "falsework.yaml").write_text("{}\n", encoding="utf-8")
    try:
        async with fw.database("postgres", "fw_sse") as url:
            port = free_port()
            env = fw.env_for(
                url,
                FALSEWORK_DATA_DIR=str(work / "data"),
                FALSEWORK_CONFIG=str(work / "falsework.yaml"),
                # every stream here is the same (guest) user's: lift the per-user cap
                FALSEWORK_MAX_STREAMS_PER_USER=str(args.clients + 100),
            )
            server = await start_server(
                ["serve", "--port", str(port), "--concurrency", "0", "--log-level", "warning"],
                env=env,
                log_path=work / "serve.log",
            )
            base = f"http://127.0.0.1:{port}"
            worker = None
            peak = [0.0]
            stop_sampling = asyncio.Event()
            sampler = asyncio.create_task(sample_rss(server.pid, peak, stop_sampling))
            try:
                await wait_healthy(base)
                ids = await create_tasks(base, args.clients, args.seconds)
                streams = [Stream(task_id) for task_id in ids]
                budget = args.seconds * 2 + 180
                followers = [
                    asyncio.create_task(follow("127.0.0.1", port, s, budget)) for s in streams
                ]
                t_connect = time.perf_counter()
                await asyncio.wait_for(
                    asyncio.gather(*(s.connected.wait() for s in streams)), timeout=120
                )
                connect_s = time.perf_counter() - t_connect
                rss_connected = peak[0]
                log(f"{len(streams)} streams open in {connect_s:.1f} s, API RSS {peak[0]:.0f} MiB")
                api = psutil.Process(server.pid)
                cpu0 = _cpu(api)
                t_run = time.perf_counter()
                worker = await start_worker(url, args.clients, env=env, name="worker")
                await asyncio.gather(*followers)
                run_s = time.perf_counter() - t_run
                api_cpu_s = _cpu(api) - cpu0
                truth: dict[str, list[int]] = {}
                for task_id, ev_id in await fw.sql(
                    url, "SELECT task_id, id FROM task_events ORDER BY id"
                ):
                    truth.setdefault(str(task_id), []).append(int(ev_id))
                statuses = dict(
                    await fw.sql(url, "SELECT status, count(*) FROM tasks GROUP BY status")
                )
            finally:
                stop_sampling.set()
                await sampler
                if worker is not None:
                    await worker.stop(grace=30)
                code = await server.stop(grace=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    exact = gaps = dups = out_of_order = errors = unfinished = 0
    delays: list[float] = []
    for s in streams:
        got = [e[0] for e in s.events]
        want = truth.get(s.task_id, [])
        if s.error is not None or s.status != 200:
            errors += 1
        if got == want and want and s.events[-1][1] in ("completion", "cancelled"):
            exact += 1
        if len(set(got)) != len(got):
            dups += 1
        if got != sorted(got):
            out_of_order += 1
        if set(want) - set(got):
            gaps += 1
        if not s.ended:
            unfinished += 1
        delays.extend((e[3] - e[2]) * 1000.0 for e in s.events if not math.isnan(e[2]))
    events_total = sum(len(s.events) for s in streams)
    delay = latency_summary(delays) if delays else {}
    log(
        f"exact {exact}/{len(streams)}, gaps {gaps}, dups {dups}, disorder {out_of_order}, "
        f"errors {errors}, events {events_total}, push delay {delay}, API peak RSS {peak[0]:.0f}, "
        f"API CPU {api_cpu_s:.1f} s"
    )
    sample_errors = [s.error or f"HTTP {s.status}" for s in streams if s.error or s.status != 200][
        :3
    ]
    emit(
        "api_sse",
        "falsework",
        "clients_exact",
        exact,
        db="postgres",
        clients=len(streams),
        events_delivered=events_total,
        events_per_task=round(events_total / max(1, len(streams)), 1),
        streams_with_gaps=gaps,
        streams_with_duplicates=dups,
        streams_out_of_order=out_of_order,
        client_errors=errors,
        error_samples=sample_errors,
        unfinished_streams=unfinished,
        connect_all_s=round(connect_s, 2),
        run_s=round(run_s, 2),
        push_delay_p50_ms=delay.get("p50_ms"),
        push_delay_p99_ms=delay.get("p99_ms"),
        api_cpu_s=round(api_cpu_s, 2),
        api_cpu_us_per_event=round(api_cpu_s * 1e6 / max(1, events_total)),
        load_avg=round(os.getloadavg()[0], 1),
        api_rss_connected_mb=round(rss_connected, 1),
        api_peak_rss_mb=round(peak[0], 1),
        statuses=statuses,
        server_exit=code,
        cross_node=True,
        target_p50_ms=TARGET_P50_MS,
        target_p99_ms=TARGET_P99_MS,
        ok=exact == len(streams) == args.clients
        and delay.get("p50_ms", math.inf) < TARGET_P50_MS
        and delay.get("p99_ms", math.inf) < TARGET_P99_MS,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="1,000 SSE clients on one API process")
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.seconds = 100, 1.0
    # 1,000 sockets here and as many in the API process (it inherits the limit)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, args.clients * 2 + 512))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
