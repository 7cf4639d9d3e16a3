"""Draw the benchmark plots (matplotlib PNG) from result lines.

    python -m bench.plot [bench/results/latest.jsonl]

* ``docs/benchmarks-throughput.png``: Falsework tasks/s against worker concurrency
  (Postgres and SQLite), with the peers at their measured concurrency;
* ``docs/benchmarks-latency.png``: enqueue→start p50/p99 for every system measured.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, RESULTS_DIR

DOCS = REPO_ROOT / "docs"
Row = Mapping[str, Any]


def load(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_throughput(rows: Iterable[Row], target: Path) -> Path | None:
    sweep: dict[str, list[tuple[int, float]]] = {}
    peers: list[Row] = []
    for row in rows:
        if row.get("bench") == "throughput_vs_concurrency" and row.get("value"):
            sweep.setdefault(str(row.get("db")), []).append(
                (int(row["concurrency"]), float(row["value"]))
            )
        elif row.get("bench") == "throughput" and row.get("system") != "falsework":
            if row.get("value"):
                peers.append(row)
    if not sweep:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for db, points in sorted(sweep.items()):
        points.sort()
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        ax.plot(xs, ys, marker="o", label=f"Falsework ({db})")
    markers = {"pgqueuer": "s", "procrastinate": "^"}
    colours = {"pgqueuer": "#444444", "procrastinate": "#9b59b6"}
    for row in peers:
        name = str(row["system"])
        jobs = int(row.get("jobs", 0))
        ax.scatter(
            [int(row.get("concurrency", 100))],
            [float(row["value"])],
            marker="D" if jobs >= 10_000 else markers.get(name, "x"),
            color=colours.get(name, "black"),
            s=60,
            zorder=3,
            label=f"{name} {row.get('version', '')} (postgres, {jobs:,} jobs)",
        )
    ax.set_xscale("log")
    all_c = sorted({c for pts in sweep.values() for c, _ in pts})
    ax.set_xticks(all_c)
    ax.set_xticklabels([str(c) for c in all_c])
    ax.set_xlabel("worker concurrency (one process)")
    ax.set_ylabel("tasks completed per second")
    ax.set_title("Throughput: single-step no-op tasks, one worker process")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    plt.close(fig)
    return target


def plot_latency(rows: Iterable[Row], target: Path) -> Path | None:
    points = [
        row
        for row in rows
        if row.get("bench") == "latency" and row.get("value") is not None and "p99_ms" in row
    ]
    if not points:
        return None
    plt = _figure()
    labels = [f"{r['system']}\n({r.get('db', '')})" for r in points]
    p50 = [float(r["value"]) for r in points]
    p99 = [float(r["p99_ms"]) for r in points]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    xs = list(range(len(points)))
    width = 0.38
    ax.bar([x - width / 2 for x in xs], p50, width, label="p50")
    ax.bar([x + width / 2 for x in xs], p99, width, label="p99")
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("enqueue → start (ms)")
    ax.set_title("Latency: idle worker, one task at a time")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)
    return target


def plot_all(rows: list[dict[str, Any]], docs: Path | None = None) -> list[Path]:
    docs = docs or DOCS
    written = []
    for fn, name in (
        (plot_throughput, "benchmarks-throughput.png"),
        (plot_latency, "benchmarks-latency.png"),
    ):
        path = fn(rows, docs / name)
        if path is not None:
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else RESULTS_DIR / "latest.jsonl"
    for path in plot_all(load(source)):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
