"""Benchmark 11: faults survived, with production timings.

The chaos suite's scenarios (``tests/support/faultlab.py``: real ``falsework
serve`` / ``falsework worker`` processes, a private Postgres cluster, a loopback
recorder's append-only file) run with the defaults of docs/engine.md: heartbeat
2 s, stale timeout 15 s (lease 10 s, margin 2 s), a 25 s outage, 20 tasks whose
in-flight step waits 6 s. One row per scenario: lost, failed by the fault,
overlapping executions, duplicate events, repeated side effects (and how many
runs were in flight at the fault), superseded markers, recovery time (target:
stale timeout + 5 s). Needs root (network namespaces, a private cluster).

    python -m bench.faults [--only kill9,sigstop,...] [--quick] [--write docs/benchmarks.md]

``--quick`` uses the test timings instead (stale 3 s). ``--write`` replaces the
block between ``<!-- faults:begin -->`` and ``<!-- faults:end -->``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import REPO_ROOT, emit, log

sys.path.insert(0, str(REPO_ROOT / "tests"))  # the scenarios live with the chaos suite

from support.faultlab import PRODUCTION, SCENARIOS, TEST, Figures, lab

BEGIN = "<!-- faults:begin -->"
END = "<!-- faults:end -->"


def table(rows: list[Figures], timing_note: str) -> str:
    head = (
        "| scenario | tasks | lost | failed | overlapping | duplicate events "
        "| repeated side effects (in flight) | superseded markers | recovery |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {f.scenario} | {f.tasks} | {f.lost} | {f.failed} | {f.overlapping} "
        f"| {f.duplicate_events} | {f.repeated_effects} ({f.in_flight}) | {f.superseded} "
        f"| {f.recovery_s:.1f} s |"
        for f in rows
        if f.recovery_s is not None
    ]
    return f"{timing_note}\n\n{head}" + "\n".join(lines) + "\n"


def write(doc: Path, block: str) -> None:
    text = doc.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    doc.write_text(text[:start] + "\n" + block + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    timing = TEST if args.quick else PRODUCTION
    rows: list[Figures] = []
    for name in args.only.split(","):
        root = Path(tempfile.mkdtemp(prefix="fw-faults-"))
        root.chmod(0o755)
        started = time.monotonic()
        log(f"{name}: running")
        with lab(root / "lab", timing) as made:
            figures = SCENARIOS[name](made)
        rows.append(figures)
        emit("faults", "falsework", name, figures.recovery_s, **figures.row())
        log(f"{name}: {figures.row()} in {time.monotonic() - started:.0f}s")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    note = (
        f"`python -m bench.faults{' --quick' if args.quick else ''}`, {when}: heartbeat "
        f"{timing.heartbeat:g} s, stale timeout {timing.stale:g} s (lease "
        f"{timing.stale * 2 / 3:g} s, margin {timing.stale * 2 / 15:g} s), outage "
        f"{timing.outage:g} s, {timing.tasks} tasks whose in-flight step waits {timing.work:g} s; "
        "recovery target: stale timeout + 5 s."
    )
    block = table(rows, note)
    print(block, file=sys.stderr)
    if args.write:
        write(args.write, block)


if __name__ == "__main__":
    main()
