"""Benchmark (issue 8): does a hostile template author freeze or bloat the server?

A real ``falsework serve`` (SQLite, no worker, local mode: the guest is an admin, so
a template author) gets 8 worst-case dry-runs at once — expressions burning CPU up
to the render limit step after step, 5 MB log lines, a backtracking regex, a child
going over its memory — while a probe asks ``/healthz`` every 10 ms: its p50/p99
latency is reported (target p99 < 100 ms) beside the same probe on the idle
server, measured in the same run. Then 100 hostile requests (those
dry-runs, 9 MB uploads, JSON nested 5,000 deep) and the server's RSS before and
after (target: within 50 MB of idle). The dry-run children are not the server:
their memory is bounded by ``dry_run_memory_mb`` and reported apart.

    python -m bench.security [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import fw
from bench.api_throughput import wait_healthy
from bench.common import emit, latency_summary, log, run
from bench.procs import free_port, start_server

DRY_RUN = "/api/scaffolder/v2/dry-run"
BURN = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def _template(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {"name": "hostile"},
        "spec": {"steps": steps},
    }


def _steps(action: str, make_input: Any, n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"s{i}", "action": action, "if": "${{ always() }}", "input": make_input(i)}
        for i in range(n)
    ]


def hostile_bodies() -> dict[str, dict[str, Any]]:
    big = base64.b64encode(b"x" * 6_500_000).decode()
    copies = [
        {"id": f"c{i}", "action": "fetch:plain", "input": {"url": "./big", "targetPath": f"c{i}"}}
        for i in range(20)
    ]
    return {
        # a render burning CPU until the render limit, then again in the next step
        "burn": {"template": _template(_steps("debug:log", lambda i: {"message": BURN}, 40))},
        # ten 5 MB log lines
        "logs": {
            "template": _template(
                _steps("debug:log", lambda i: {"message": "${{ 'x' * 5000000 }}"}, 10)
            )
        },
        # catastrophic backtracking on a 30-character value
        "regex": {
            "template": _template(
                _steps(
                    "debug:log",
                    lambda i: {"message": "${{ ('a' * 30 + '!') | replace(r/^(a+)+$/, 'b') }}"},
                    20,
                )
            )
        },
        # 130 MB of files read back: past the child's memory
        "memory": {
            "template": _template(copies),
            "directoryContents": [{"path": "big/file.bin", "base64Content": big}],
        },
    }


async def probe(base: str, stop: asyncio.Event, samples: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            response = await client.get("/healthz")
            if response.status_code == 200:
                samples.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.01)


def _probe_process(base: str, stop: Any, results: Any) -> None:
    async def watch() -> None:
        done = asyncio.Event()
        samples: list[float] = []
        prober = asyncio.create_task(probe(base, done, samples))
        await asyncio.to_thread(stop.wait)
        done.set()
        await prober
        results.put(samples)

    asyncio.run(watch())


class Prober:
    """``probe`` in a process of its own: this process builds and sends the hostile
    bodies (JSON-encoding 130 MB stalls its event loop), and that stall is the
    client's, not the server's, so it must not land in the samples."""

    def __init__(self, base: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._results: Any = context.Queue()
        self._process = context.Process(
            target=_probe_process, args=(base, self._stop, self._results), daemon=True
        )

    def start(self) -> None:
        self._process.start()

    async def stop(self) -> list[float]:
        self._stop.set()
        samples: list[float] = await asyncio.to_thread(self._results.get, True, 60)
        await asyncio.to_thread(self._process.join, 10)
        return samples


async def dry_run(client: httpx.AsyncClient, body: dict[str, Any]) -> int:
    response = await client.post(DRY_RUN, json={"values": {}, **body})
    return response.status_code


def _deep_body() -> bytes:
    levels = 5000
    return ('{"template":' + '{"a":' * levels + "1" + "}" * levels + ',"values":{}}').encode()


async def main(quick: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-security-"))
    (work / "falsework.yaml").write_text("{}\n", encoding="utf-8")
    timeout = "5" if quick else "10"
    try:
        url = f"sqlite:///{work / 'falsework.db'}"
        port = free_port()
        env = fw.env_for(
            url,
            FALSEWORK_DATA_DIR=str(work / "data"),
            FALSEWORK_CONFIG=str(work / "falsework.yaml"),
            FALSEWORK_DRY_RUN_TIMEOUT=timeout,
            FALSEWORK_DRY_RUN_WORKERS="2",
            FALSEWORK_DRY_RUN_QUEUE="200",
            FALSEWORK_DRY_RUNS_PER_USER="200",
            FALSEWORK_DRY_RUNS_PER_MINUTE="10000",
        )
        server = await start_server(
            ["serve", "--port", str(port), "--concurrency", "0", "--log-level", "warning"],
            env=env,
            log_path=work / "serve.log",
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(base)
            await _measure(base, psutil.Process(server.pid), quick)
        finally:
            code = await server.stop(grace=60)
            if code != 0:
                log("server exit", code, (work / "serve.log").read_text()[-2000:])
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def _measure(base: str, server: psutil.Process, quick: bool) -> None:
    bodies = hostile_bodies()
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        warm = {"template": _template([{"id": "a", "action": "debug:log", "input": {}}])}
        assert await dry_run(client, warm) == 200
        await asyncio.sleep(1)
        idle = server.memory_info().rss
        # the peer in the same run: /healthz on the idle server, so what the hostile
        # load adds is told apart from what this machine's other load does to it
        calm_prober = Prober(base)
        calm_prober.start()
        await asyncio.sleep(5)
        quiet = await calm_prober.stop()
        quiet_summary = latency_summary(quiet)
        log(f"healthz on the idle server {quiet_summary}")
        emit(
            "security",
            "falsework",
            "healthz_ms_idle",
            quiet_summary["p99_ms"],
            p50=quiet_summary["p50_ms"],
            max=quiet_summary["max_ms"],
            probes=len(quiet),
        )
        # 8 worst cases at once, /healthz probed every 10 ms meanwhile
        prober = Prober(base)
        prober.start()
        await asyncio.sleep(0.5)
        kinds = ["burn", "burn", "burn", "logs", "regex", "regex", "memory", "burn"]
        started = time.monotonic()
        codes = await asyncio.gather(*(dry_run(client, bodies[k]) for k in kinds))
        elapsed = time.monotonic() - started
        samples = await prober.stop()
        summary = latency_summary(samples)
        log(f"8 hostile dry-runs in {elapsed:.1f} s, answers {codes}; healthz {summary}")
        emit(
            "security",
            "falsework",
            "healthz_ms_during_8_hostile_dry_runs",
            summary["p99_ms"],
            p50=summary["p50_ms"],
            max=summary["max_ms"],
            probes=len(samples),
            ok=summary["p99_ms"] < 100,
            seconds=round(elapsed, 1),
            answers=codes,
        )
        # 100 hostile requests, 8 at a time
        count = 40 if quick else 100
        mix = ["logs", "regex", "memory", "upload", "deep"]
        upload = {
            "template": _template([{"id": "a", "action": "debug:log", "input": {}}]),
            "directoryContents": [
                {"path": "f.bin", "base64Content": base64.b64encode(b"y" * 7_000_000).decode()}
            ],
        }
        semaphore = asyncio.Semaphore(8)

        async def one(i: int) -> int:
            kind = mix[i % len(mix)]
            async with semaphore:
                if kind == "deep":
                    response = await client.post(
                        DRY_RUN, content=_deep_body(), headers={"Content-Type": "application/json"}
                    )
                    return response.status_code
                return await dry_run(client, upload if kind == "upload" else bodies[kind])

        started = time.monotonic()
        answers = await asyncio.gather(*(one(i) for i in range(count)))
        took = time.monotonic() - started
        log(f"{count} hostile requests in {took:.1f} s: answers {sorted(set(answers))}")
        await asyncio.sleep(2)
        after = server.memory_info().rss
        children = [c.memory_info().rss for c in server.children(recursive=True)]
        mb = 1024 * 1024
        log(
            f"server RSS idle {idle / mb:.1f} MB, after {after / mb:.1f} MB, "
            f"children {[round(c / mb) for c in children]} MB"
        )
        emit(
            "security",
            "falsework",
            "server_rss_growth_mb_after_hostile_requests",
            round((after - idle) / mb, 1),
            idle_mb=round(idle / mb, 1),
            after_mb=round(after / mb, 1),
            requests=count,
            ok=(after - idle) / mb <= 50,
            children_mb=[round(c / mb, 1) for c in children],
        )
        with contextlib.suppress(httpx.HTTPError):
            assert (await client.get("/healthz")).status_code == 200


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    run(lambda: main(options.quick))
