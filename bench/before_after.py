"""The engine's benchmarks on two commits, alternating, in one run of the machine.

Issue 9 asks for ``make bench`` before and after the engine's redesign "in the
same run of the machine": this machine's speed drifts by 2x within an hour, so
two runs taken apart prove nothing. Given a checkout of the earlier commit (a
``git worktree``), each benchmark below runs in turns on the two trees (old new,
new old, ...), each run in its own process with that tree's ``src`` first on
``sys.path`` and that tree's own ``bench`` package (the scripts' options are the
ones both trees share). Result lines are paired by benchmark, system, metric and
database; the table gives each side's median, the ratio new / old, and whether
the new side is within 5 % (or better), reading ``*_ms``, ``*_s`` and ``*_mb``
figures as lower-is-better.

    git worktree add --detach /tmp/before 82336da
    python -m bench.before_after --before /tmp/before [--rounds 3] [--only throughput,...]
                                   [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, log


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str] = field(default_factory=list)
    new_only: list[str] = field(default_factory=list)  # options the old tree does not know
    timeout: float = 900.0
    # a metric both sides must report alike for their other figures to compare
    # (api_sse: a tree whose server refused most streams measured a lighter load)
    same: str = ""


CASES = [
    Case("throughput", ["--tasks", "10000", "--repeat", "1", "--sweep", ""]),
    Case("latency", ["--samples", "200"]),
    Case("concurrency"),
    Case("balance"),
    Case("recovery"),
    Case("api_throughput", new_only=["--no-backstage"]),
    Case("api_sse", same="clients_exact"),
]
TOLERANCE = 0.05
LOWER_IS_BETTER = ("_ms", "_s", "_mb", "_pct", "_task")
# figures a result line carries beside its value, compared the same way
FIELDS = (
    "completed",
    "p99_ms",
    "peak_rss_mb",
    "push_delay_p50_ms",
    "push_delay_p99_ms",
    "server_cpu_ms_per_task",
    "post_p50_ms",
)
Key = tuple[str, ...]
DISTINCT = ("concurrency", "tasks", "clients", "workers")  # rows of one script told apart


def _run(tree: Path, case: Case, new: bool, quick: bool) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    argv = [sys.executable, "-m", f"bench.{case.name}", *(["--quick"] if quick else case.args)]
    if new:
        argv += case.new_only
    done = subprocess.run(
        argv,
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        timeout=case.timeout,
        check=False,
    )
    rows = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            rows.append(json.loads(line))
    if done.returncode != 0 or not rows:
        log(f"{case.name} in {tree} exited {done.returncode} with {len(rows)} result lines")
    return rows


def _key(row: dict[str, Any]) -> Key:
    fields = [str(row.get(k, "")) for k in ("bench", "system", "metric", "db")]
    fields += [f"{k}={row[k]}" for k in DISTINCT if k in row]
    return tuple(fields)


def _better(metric: str, ratio: float) -> bool:
    if metric.endswith(LOWER_IS_BETTER) and not metric.endswith("per_s"):
        return ratio <= 1 + TOLERANCE
    return ratio >= 1 - TOLERANCE


def measure(
    before: Path, after: Path, rounds: int, cases: list[Case], quick: bool = False
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for case in cases:
        seen: dict[str, dict[Key, list[float]]] = {"before": {}, "after": {}}
        for r in range(rounds):
            order = [("before", before), ("after", after)]
            if r % 2:
                order.reverse()
            for side, tree in order:
                started = time.monotonic()
                for row in _run(tree, case, side == "after", quick):
                    for name in ("value", *FIELDS):
                        figure = row.get(name)
                        if isinstance(figure, int | float) and not isinstance(figure, bool):
                            key = _key({**row, "metric": name}) if name != "value" else _key(row)
                            seen[side].setdefault(key, []).append(float(figure))
                log(
                    f"{case.name} round {r + 1}/{rounds} {side}: "
                    f"{time.monotonic() - started:.0f} s (load {os.getloadavg()[0]:.1f})"
                )
        differ = _differing(seen, case.same)
        if differ:
            log(f"{case.name}: {differ}; its other figures do not compare")
        for key in sorted(set(seen["before"]) & set(seen["after"])):
            old, new = seen["before"][key], seen["after"][key]
            a, b = statistics.median(old), statistics.median(new)
            ratio = b / a if a else (1.0 if b == a else float("inf"))
            row = {
                "bench": "before_after",
                "system": "falsework",
                "metric": "/".join(k for k in key if k),
                "value": round(ratio, 3),
                "before": [round(v, 2) for v in old],
                "after": [round(v, 2) for v in new],
                "ok": _better(key[2], ratio),
            }
            if differ and key[2] != case.same:
                row["ok"], row["not_comparable"] = False, differ
            print(json.dumps(row), flush=True)
            results.append(row)
    return results


def _differing(seen: dict[str, dict[Key, list[float]]], metric: str) -> str:
    """Why the two sides measured different things (``metric`` not alike in
    every run of both), or "" when they did not (or no metric is named)."""
    if not metric:
        return ""
    for key in set(seen["before"]) | set(seen["after"]):
        if key[2] != metric:
            continue
        values = {side: sorted(set(seen[side].get(key, []))) for side in ("before", "after")}
        if values["before"] != values["after"] or len(values["before"]) != 1:
            return f"{metric} before {values['before']} and after {values['after']}"
    return ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the old commit")
    parser.add_argument("--after", type=Path, default=REPO_ROOT, help="checkout of the new one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--quick", action="store_true", help="each script's smoke size")
    args = parser.parse_args(argv)
    wanted = {n for n in args.only.split(",") if n}
    cases = [c for c in CASES if not wanted or c.name in wanted]
    rows = measure(args.before.resolve(), args.after.resolve(), args.rounds, cases, args.quick)
    print("| measure | before (runs) | after (runs) | after / before | within 5 % |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['metric']} | {', '.join(map(str, row['before']))} | "
            f"{', '.join(map(str, row['after']))} | {row['value']:.3f} | "
            f"{_verdict(row)} |"
        )


def _verdict(row: dict[str, Any]) -> str:
    if "not_comparable" in row:
        return f"not comparable ({row['not_comparable']})"
    return "yes" if row["ok"] else "**no**"


if __name__ == "__main__":
    main()
