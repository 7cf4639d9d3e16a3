"""Run every benchmark in sequence, each in its own subprocess (``make bench``).

Prints every result line (JSON) as it arrives, writes them all to
``bench/results/latest.jsonl``, then draws the plots (``bench.plot``). A benchmark
that fails or overruns its time budget is recorded as an ``error`` line and the
run goes on with the next one; the exit code is non-zero if any failed.

    python -m bench.run_all [--quick] [--only NAME[,NAME...]] [--skip NAME[,...]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import REPO_ROOT, RESULTS_DIR, drop_stale_databases, machine


@dataclass(frozen=True)
class Bench:
    name: str
    module: str
    args: list[str] = field(default_factory=list)
    timeout: float = 600.0  # seconds, full run; --quick uses a fifth (at least 120 s)


# The order matters a little: the peers first, so Falsework's throughput runs right
# after them on a machine in the same state; issue 17's pairs before the long runs of
# retention, webhooks and updates.
BENCHES: list[Bench] = [
    Bench("peers", "bench.peers", ["--what", "throughput"], timeout=600),
    Bench("throughput", "bench.throughput", timeout=900),
    # issue 17, target 5: Falsework and PgQueuer alternating run by run
    Bench("throughput_side", "bench.throughput_side", timeout=900),
    # Postgres latency: the three systems in rotated rounds; SQLite: Falsework alone
    Bench("latency_side", "bench.latency_side", timeout=600),
    Bench("latency", "bench.latency", ["--db", "sqlite"], timeout=300),
    Bench("concurrency", "bench.concurrency", timeout=300),
    Bench("balance", "bench.balance", timeout=300),
    Bench("fairness", "bench.fairness", timeout=300),
    Bench("recovery", "bench.recovery", timeout=300),
    # issue 17: beside the real Backstage (installed once into a cache by its setup.sh)
    Bench("api_throughput", "bench.api_throughput", timeout=1800),
    Bench("api_sse", "bench.api_sse", timeout=400),
    # issues 3 and 17 (written with the runner): fetch:template on 1,000 and 50 files
    # beside cookiecutter and copier (8 min under a load of 11), and input rendering
    Bench("fetch_template", "bench.fetch_template", timeout=1200),
    Bench("render", "bench.render", timeout=300),
    # issue 8: /healthz while hostile dry-runs run, server RSS after hostile requests
    Bench("security", "bench.security", timeout=600),
    # issue 14: falsework templates test on 100 cases over the example templates
    Bench("templates_test", "bench.templates_test", timeout=300),
    # issue 17: the command line's start beside cookiecutter and copier
    Bench("cli_start", "bench.cli_start", timeout=600),
    # issue 17: the task a person starts (create -> first event -> completed), beside
    # Backstage; ~5 min, plus ~10 min once if the Backstage oracle is not installed yet
    Bench("person_task", "bench.person_task", timeout=1200),
    # issue 16: a retention pass over 1 M events, the claim latency beside it
    Bench("retention", "bench.retention", timeout=900),
    # issue 16: how fast the completion webhooks' outbox drains
    Bench("webhooks", "bench.webhooks", timeout=600),
    # issue 9 follow-up: the outbox's writes per task with no webhook configured
    Bench("hook_writes", "bench.hook_writes", timeout=300),
    # issue 15: an update of a 1,000-file repository; a fleet update of 200 on one node
    Bench("updates", "bench.updates", timeout=1200),
]


def _module_exists(module: str) -> bool:
    return (REPO_ROOT / Path(*module.split("."))).with_suffix(".py").exists()


def _accepts_quick(module: str) -> bool:
    """Every script here takes --quick; one written elsewhere may not."""
    source = (REPO_ROOT / Path(*module.split("."))).with_suffix(".py")
    return "--quick" in source.read_text(encoding="utf-8")


def run_one(bench: Bench, quick: bool, out: list[dict[str, object]]) -> bool:
    """Run one benchmark subprocess; collect its JSON lines into ``out``."""
    if not _module_exists(bench.module):
        _error(out, bench, f"{bench.module} does not exist yet")
        return False
    cmd = [sys.executable, "-m", bench.module, *bench.args]
    timeout = max(120.0, bench.timeout / 5) if quick else bench.timeout
    if quick and _accepts_quick(bench.module):
        cmd.append("--quick")
    print(f"# {' '.join(cmd[1:])}  (budget {timeout:.0f} s)", file=sys.stderr, flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    assert proc.stdout is not None
    ok = True
    try:
        for line in _lines_until(proc, started + timeout):
            line = line.strip()
            if not line.startswith("{"):
                print(line, file=sys.stderr, flush=True)
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                print(line, file=sys.stderr, flush=True)
                continue
            print(json.dumps(row), flush=True)
            out.append(row)
        rc = proc.wait(timeout=max(1.0, started + timeout - time.monotonic()))
        if rc != 0:
            ok = False
            _error(out, bench, f"exit code {rc}")
    except subprocess.TimeoutExpired:
        ok = False
        _kill(proc)
        _error(out, bench, f"overran its budget of {timeout:.0f} s")
    elapsed = time.monotonic() - started
    print(f"# {bench.name}: {elapsed:.1f} s", file=sys.stderr, flush=True)
    return ok


def _lines_until(proc: subprocess.Popen[bytes], deadline: float) -> Iterator[str]:
    """Yield stdout lines as they come; raise TimeoutExpired after the deadline."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    buf = ""
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0)
            if not sel.select(timeout=min(remaining, 1.0)):
                continue
            chunk = os.read(fd, 65536).decode("utf-8", "replace")
            if not chunk:
                break
            buf += chunk
            while "\n" in buf:
                line, buf = buf.split("\n", 1)
                yield line
    finally:
        sel.close()
    if buf:
        yield buf


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _error(out: list[dict[str, object]], bench: Bench, message: str) -> None:
    row: dict[str, object] = {
        "bench": bench.name,
        "system": "-",
        "metric": "error",
        "value": None,
        "error": message,
    }
    print(json.dumps(row), flush=True)
    out.append(row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark (make bench).")
    parser.add_argument("--quick", action="store_true", help="small smoke run of each")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names")
    parser.add_argument("--output", type=Path, default=None, help="default results/latest.jsonl")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    unknown = (only | skip) - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    left = asyncio.run(drop_stale_databases())
    if left:
        print(f"# dropped {left} database(s) left by an interrupted run", file=sys.stderr)

    results: list[dict[str, object]] = []
    header = {
        "bench": "meta",
        "system": "-",
        "metric": "run",
        "value": None,
        "quick": args.quick,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **machine(),
    }
    results.append(header)
    failures = 0
    for bench in BENCHES:
        if (only and bench.name not in only) or bench.name in skip:
            continue
        if not run_one(bench, args.quick, results):
            failures += 1

    # only a complete full run replaces latest.jsonl (the record the docs are built from)
    partial = args.quick or bool(only or skip)
    output = args.output or RESULTS_DIR / ("quick.jsonl" if partial else "latest.jsonl")
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as fh:
        for row in results:
            fh.write(json.dumps(row) + "\n")
    print(f"# wrote {len(results)} lines to {output}", file=sys.stderr)

    if not args.no_plot:
        from bench.plot import plot_all

        # a smoke run must not overwrite the documented plots
        for path in plot_all(results, RESULTS_DIR if partial else None):
            print(f"# wrote {path}", file=sys.stderr)
        if not partial:
            from bench.report import render, write

            doc = REPO_ROOT / "docs" / "benchmarks.md"
            if doc.exists():
                write(doc, render(results))
                print(f"# updated the results in {doc}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
