"""Benchmark (issue 17, target 6): the task a person starts.

One person, one task at a time, through the HTTP API: ``POST /api/scaffolder/v2/tasks``
→ the first event on the task's live stream (``…/eventstream``) → the stream's
``completion`` event. The template is shaped like the common real ones
(``bench/templates/person-task``): a 50-file skeleton (5 files templated: README,
catalog-info.yaml, package.json, mkdocs.yml, src/settings.ts; 45 plain: TypeScript
sources and tests, docs, CI and tool files) rendered with ``fetch:template``, then
``publish:git`` to a new bare repository on this machine.

Three variants, the same client, the same run, in rotated rounds:

- ``falsework`` ``publish``: ``person-task`` (fetch:template + publish:git);
- ``falsework`` ``render``: ``person-render`` (fetch:template + debug:log);
- ``backstage`` ``render``: the same ``person-render`` on the real Backstage scaffolder
  (the oracle in ``../shared/tools/backstage-oracle``). None of the oracle's installed
  actions pushes to a local bare repository (its publish actions live in forge modules
  that need a GitHub, GitLab, … host), so Backstage's task stops after the render; the
  like-for-like pair is Falsework's ``render`` beside it.

Both servers run on SQLite, side by side, each idle while the other is measured. Two
untimed runs per variant first. Reported per variant: p50 / p99 / spread of the first
event delay and of the completion time; the ratio is Backstage's p50 over Falsework's.

    python -m bench.person_task [--runs 50] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench import fw
from bench.backstage import CACHE, OracleUnavailable, run_script
from bench.common import emit, latency_summary, log, percentile, run
from bench.procs import free_port, start_server

TEMPLATE_DIR = fw.TEMPLATES / "person-task"
API = "/api/scaffolder/v2"
ORACLE_CACHE = CACHE
RUN_TIMEOUT = 120.0
SKELETON_FILES = 50


@dataclass
class Variant:
    system: str
    shape: str  # "publish" or "render"
    base: str
    template: str
    first_ms: list[float] = field(default_factory=list)
    done_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def one_task(client: httpx.AsyncClient, v: Variant, name: str) -> tuple[float, float]:
    """POST a task, follow its event stream; (first event, completion) in ms from the POST."""
    body = {"templateRef": f"template:default/{v.template}", "values": {"name": name}}
    t0 = time.perf_counter()
    created = await client.post(f"{v.base}{API}/tasks", json=body)
    if created.status_code != 201:
        raise RuntimeError(f"POST {created.status_code}: {created.text[:300]}")
    task_id = created.json()["id"]
    first = done = None
    kind = ""
    listed: list[str] = []
    async with client.stream("GET", f"{v.base}{API}/tasks/{task_id}/eventstream") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                if first is None:
                    first = time.perf_counter()
                if kind == "log" and "Workspace:" in line:
                    listed = _listed(line[5:])
                if kind == "completion":
                    done = time.perf_counter()
                    break
    if first is None or done is None:
        raise RuntimeError(f"task {task_id}: the stream ended without a completion event")
    status = (await client.get(f"{v.base}{API}/tasks/{task_id}")).json().get("status")
    if status != "completed":
        raise RuntimeError(f"task {task_id} ended {status}")
    if v.shape == "render" and (len(listed) != SKELETON_FILES or "catalog-info.yaml" not in listed):
        raise RuntimeError(f"task {task_id}: the workspace listed {len(listed)} files")
    return (first - t0) * 1000.0, (done - t0) * 1000.0


def _listed(data: str) -> list[str]:
    """The files of debug:log's ``Workspace:`` listing (``  - path`` lines, both servers)."""
    message = str(json.loads(data).get("body", {}).get("message", ""))
    _, found, listing = message.partition("Workspace:\n")  # after the level prefix
    return [line[4:] for line in listing.splitlines() if line.startswith("  - ")] if found else []


async def measure(variants: list[Variant], runs: int) -> None:
    async with httpx.AsyncClient(timeout=RUN_TIMEOUT) as client:
        for n in range(runs + 2):
            shift = n % len(variants)
            for v in variants[shift:] + variants[:shift]:
                name = f"svc-{v.system}-{v.shape}-{n}"
                try:
                    first, done = await asyncio.wait_for(one_task(client, v, name), RUN_TIMEOUT)
                except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
                    v.failures.append(f"{name}: {exc!r}"[:300])
                    continue
                if n >= 2:  # the first two of each are warm-up
                    v.first_ms.append(first)
                    v.done_ms.append(done)
            if n % 10 == 0:
                log(
                    f"round {n}: "
                    + ", ".join(f"{v.system}/{v.shape} {v.done_ms[-1:]}" for v in variants)
                )


# -- Falsework ---------------------------------------------------------------------


def _config_file(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / "falsework.yaml").write_text("{}\n", encoding="utf-8")


@contextlib.asynccontextmanager
async def falsework_server(work: Path) -> AsyncIterator[str]:
    from bench.api_throughput import wait_healthy

    async with fw.database("sqlite", "fw_person") as url:
        _config_file(work)
        port = free_port()
        env = fw.env_for(
            url,
            FALSEWORK_DATA_DIR=str(work / "data"),
            FALSEWORK_CONFIG=str(work / "falsework.yaml"),
        )
        server = await start_server(
            ["serve", "--port", str(port)], env=env, log_path=work / "serve.log"
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(base)
            yield base
        finally:
            code = await server.stop(grace=30)
            if code != 0:
                log(f"falsework serve exited {code}: {(work / 'serve.log').read_text()[-1500:]}")


def published(work: Path, runs: int) -> dict[str, Any]:
    """What publish:git left: bare repositories, and the files of the last one's commit."""
    remotes = work / "data" / "remotes"
    repos = sorted(remotes.glob("*.git")) if remotes.is_dir() else []
    files = 0
    if repos:
        last = max(repos, key=lambda p: p.stat().st_mtime)
        listing = subprocess.run(
            ["git", "--git-dir", str(last), "ls-tree", "-r", "--name-only", "main"],
            capture_output=True,
            text=True,
            check=False,
        )
        files = len(listing.stdout.split())
    return {"repositories": len(repos), "files_in_last": files, "expected": runs + 2}


# -- the Backstage oracle ----------------------------------------------------------


def _oracle_folder(work: Path, cache: Path) -> Path:
    """A private folder for this run's oracle: the cached install's node_modules linked,
    its config with one more catalog location (``person-render``), its own data and pid."""
    folder = work / "oracle"
    folder.mkdir()
    for name in ("index.js", "package.json", "app-config.postgres.yaml"):
        shutil.copy(cache / name, folder / name)
    (folder / "node_modules").symlink_to(cache / "node_modules")
    shutil.copytree(cache / "templates", folder / "templates")
    shutil.copytree(TEMPLATE_DIR, folder / "templates" / "person-task")
    config = yaml.safe_load((cache / "app-config.yaml").read_text(encoding="utf-8"))
    config["catalog"]["locations"].append(
        {
            "type": "file",
            "target": str(folder / "templates" / "person-task" / "render.yaml"),
            "rules": [{"allow": ["Template"]}],
        }
    )
    (folder / "app-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


@contextlib.asynccontextmanager
async def backstage_server(work: Path) -> AsyncIterator[str]:
    if shutil.which("node") is None:
        raise OracleUnavailable("Node.js is needed for the Backstage oracle")
    cache = Path(os.environ.get("ORACLE_DIR", str(ORACLE_CACHE)))
    if not (cache / "node_modules" / "@backstage" / "plugin-scaffolder-backend").is_dir():
        log(f"installing the Backstage oracle into {cache} (once; minutes)")
        await run_script("setup.sh", {**os.environ, "ORACLE_DIR": str(cache)}, within=1800)
    folder = _oracle_folder(work, cache)
    port = free_port()
    env = {**os.environ, "ORACLE_DIR": str(folder), "PORT": str(port), "DB": "sqlite"}
    base = f"http://127.0.0.1:{port}"
    try:
        await run_script("start.sh", env, within=300)
        schema = f"{base}{API}/templates/default/template/person-render/parameter-schema"
        async with httpx.AsyncClient(timeout=5.0) as client:
            deadline = time.monotonic() + 120
            while (await client.get(schema)).status_code != 200:
                if time.monotonic() > deadline:
                    raise OracleUnavailable("person-render never reached Backstage's catalog")
                await asyncio.sleep(0.5)
        log(f"backstage on port {port}")
        yield base
    finally:
        # always stopped, even when start.sh failed half way (its pid file is there)
        await run_script("stop.sh", env, within=60)


def backstage_version(cache: Path) -> str:
    package = cache / "node_modules" / "@backstage" / "plugin-scaffolder-backend" / "package.json"
    with contextlib.suppress(OSError, yaml.YAMLError):
        return str(yaml.safe_load(package.read_text(encoding="utf-8"))["version"])
    return "?"


# -- the run -------------------------------------------------------------------------


def _summary(samples: list[float]) -> dict[str, Any]:
    s: dict[str, Any] = dict(latency_summary(samples))
    s["min_ms"] = round(min(samples), 3) if samples else None
    s["spread_p10_p90_ms"] = (
        [round(percentile(samples, 10), 3), round(percentile(samples, 90), 3)] if samples else None
    )
    return s


async def main_async(args: argparse.Namespace) -> None:
    # SIGTERM cancels the run, so the servers are still stopped by their finally blocks
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-person-"))
    try:
        async with contextlib.AsyncExitStack() as stack:
            fw_base = await stack.enter_async_context(falsework_server(work / "fw"))
            variants = [
                Variant("falsework", "publish", fw_base, "person-task"),
                Variant("falsework", "render", fw_base, "person-render"),
            ]
            oracle_error = None
            try:
                bs_base = await stack.enter_async_context(backstage_server(work))
                variants.append(Variant("backstage", "render", bs_base, "person-render"))
            except OracleUnavailable as exc:
                oracle_error = str(exc)
                log(f"Backstage skipped: {exc}")
            await measure(variants, args.runs)
            repos = published(work / "fw", args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    by_key = {(v.system, v.shape): v for v in variants}
    fw_render = by_key[("falsework", "render")]
    bs = by_key.get(("backstage", "render"))
    cache = Path(os.environ.get("ORACLE_DIR", str(ORACLE_CACHE)))
    for v in variants:
        first, done = _summary(v.first_ms), _summary(v.done_ms)
        extra: dict[str, Any] = {}
        if v.system == "falsework" and bs and bs.done_ms and v.done_ms:
            extra["times_backstage_p50"] = round(
                percentile(bs.done_ms, 50) / percentile(v.done_ms, 50), 2
            )
            extra["times_backstage_first_p50"] = round(
                percentile(bs.first_ms, 50) / percentile(v.first_ms, 50), 2
            )
        if v.shape == "publish":
            extra["published"] = repos
        if v.system == "backstage":
            extra["version"] = backstage_version(cache)
            extra["note"] = "stops after the render: no installed action pushes to a local repo"
        complete = len(v.done_ms) == args.runs and not v.failures
        if v is fw_render and bs is not None:
            extra["ok"] = complete and bool(bs.done_ms) and extra["times_backstage_p50"] > 1.0
        elif v.shape == "publish":
            extra["ok"] = complete and repos["repositories"] == repos["expected"]
            extra["ok"] = extra["ok"] and repos["files_in_last"] == SKELETON_FILES
        emit(
            "person_task",
            v.system,
            "completed_p50_ms",
            done["p50_ms"],
            shape=v.shape,
            db="sqlite",
            runs=len(v.done_ms),
            completed=done,
            first_event=first,
            failures=len(v.failures),
            failure_samples=v.failures[:3],
            load_avg_before=[round(x, 2) for x in load],
            load_avg_after=[round(x, 2) for x in load_after],
            oracle_error=oracle_error,
            **extra,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the task a person starts (issue 17)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 5
    run(lambda: main_async(args))


if __name__ == "__main__":
    main()
