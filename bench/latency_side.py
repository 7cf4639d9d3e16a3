"""Benchmark 3 on Postgres, side by side: Falsework, PgQueuer and Procrastinate in turns.

A p99 of 200 samples is the second-worst sample, and this shared 2-core machine
drifts by a millisecond within minutes. So the three systems run in rounds, the
order rotated each round (F P Q, P Q F, Q F P, ...), each round a fresh database and
``--samples`` enqueue→start samples of an idle worker with LISTEN/NOTIFY (the
same sampling as ``bench.latency`` and ``bench.peers``). The reported figures are
over all rounds' samples pooled; each round's p50 and p99 are kept beside them.

Issue 17 asks Falsework to be ahead of both peers at p50 and p99 in every round:
Falsework's line carries ``rounds_ahead`` (how many rounds it was) and ``ok``.

    python -m bench.latency_side [--rounds 5] [--samples 200] [--quick]
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from bench import latency, peers
from bench.common import emit, fresh_database, latency_summary, log, run

SYSTEMS = ("falsework", "pgqueuer", "procrastinate")


async def _one_round(system: str, samples: int, concurrency: int) -> list[float]:
    if system == "falsework":
        to_start, _step, _create = await latency.measure_one("postgres", samples)
        return to_start
    async with fresh_database(f"{system}_lat") as dsn:
        return await peers.LATENCY[system](dsn, samples, concurrency)


async def measure(args: argparse.Namespace) -> None:
    pooled: dict[str, list[float]] = {s: [] for s in SYSTEMS}
    rounds: dict[str, list[dict[str, float]]] = {s: [] for s in SYSTEMS}
    for r in range(args.rounds):
        order = SYSTEMS[r % 3 :] + SYSTEMS[: r % 3]
        for system in order:
            samples = await _one_round(system, args.samples, args.concurrency)
            summary = latency_summary(samples)
            log(f"round {r + 1}/{args.rounds} {system}: {summary}")
            pooled[system] += samples
            rounds[system].append(summary)
    ahead = sum(
        1
        for i, mine in enumerate(rounds["falsework"])
        if all(
            mine[key] < rounds[peer][i][key] for peer in SYSTEMS[1:] for key in ("p50_ms", "p99_ms")
        )
    )
    for system in SYSTEMS:
        summary = latency_summary(pooled[system])
        log(f"{system} pooled: {summary}")
        extra: dict[str, Any] = {}
        if system != "falsework":
            extra["version"] = peers._version(system)
        else:
            extra["rounds_ahead"] = ahead
            extra["ok"] = ahead == args.rounds
        emit(
            "latency",
            system,
            "p50_ms",
            summary["p50_ms"],
            db="postgres",
            measured=f"enqueue→start, side by side, {args.rounds} rounds × {args.samples}",
            **{k: v for k, v in summary.items() if k != "p50_ms"},
            round_p50_ms=[x["p50_ms"] for x in rounds[system]],
            round_p99_ms=[x["p99_ms"] for x in rounds[system]],
            **extra,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.samples = 1, 20
    logging.basicConfig(level=logging.WARNING)
    run(lambda: measure(args))


if __name__ == "__main__":
    main()
