"""Turn result lines into the Markdown tables of docs/benchmarks.md.

    python -m bench.report [bench/results/latest.jsonl] [--write docs/benchmarks.md]

With ``--write`` the block between ``<!-- results:begin -->`` and
``<!-- results:end -->`` in the document is replaced; the prose around it is not
touched. Without it the tables go to stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR
from bench.plot import load

Row = Mapping[str, Any]
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ok(row: Row) -> str:
    if "ok" not in row or row["ok"] is None:
        return ""
    return "met" if row["ok"] else "**missed**"


def _yes_no(value: object) -> str:
    return "—" if value is None else ("met" if value else "**missed**")


def _pair(row: Row, a: str, b: str) -> str:
    return f"{_fmt(row.get(a), 2)} / {_fmt(row.get(b), 2)}"


def _table(header: list[str], lines: Iterable[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return out


def _pick(rows: Iterable[Row], bench: str, metric: str | None = None) -> list[Row]:
    return [
        r
        for r in rows
        if r.get("bench") == bench
        and r.get("metric") != "error"
        and (metric is None or r.get("metric") == metric)
    ]


def throughput(rows: list[Row]) -> list[str]:
    picked = _pick(rows, "throughput")
    if not picked:
        return []
    lines = []
    for r in picked:
        runs = ", ".join(_fmt(x, 0) for x in r.get("runs", []))
        who = r["system"] + (f" {r['version']}" if r.get("version") else "")
        n = r.get("tasks", r.get("jobs"))
        lines.append(
            [
                who,
                str(r.get("db", "")),
                _fmt(n),
                _fmt(r.get("concurrency")),
                f"**{_fmt(r.get('value'), 0)}**",
                runs,
                _fmt(r.get("events_per_task")),
                {True: "floor 1,500 met", False: "**floor 1,500 missed**"}.get(r.get("ok"), ""),
            ]
        )
    head = ["system", "db", "tasks", "concurrency", "tasks/s (median)", "runs", "events/task", ""]
    out = ["### 1. Throughput", "", *_table(head, lines), ""]
    ours = next(
        (r for r in picked if r["system"] == "falsework" and r.get("db") == "postgres"), None
    )
    if ours and ours.get("value"):
        ratios = []
        for r in picked:
            if r["system"] != "falsework" and r.get("value"):
                ratios.append(
                    f"{float(ours['value']) / float(r['value']):.2f}× {r['system']} "
                    f"({_fmt(r.get('jobs'))} jobs)"
                )
        if ratios:
            out += ["Falsework on Postgres against the peers: " + ", ".join(ratios) + ".", ""]
    sweep = _pick(rows, "throughput_vs_concurrency")
    if sweep:
        dbs = sorted({str(r.get("db")) for r in sweep})
        cs = sorted({int(r["concurrency"]) for r in sweep})
        by = {(str(r.get("db")), int(r["concurrency"])): r.get("value") for r in sweep}
        lines = [[db] + [_fmt(by.get((db, c)), 0) for c in cs] for db in dbs]
        n = sweep[0].get("tasks")
        out += [f"Throughput against concurrency ({_fmt(n)} tasks, one run each):", ""]
        out += _table(["db \\ concurrency"] + [str(c) for c in cs], lines)
        out += ["", "![throughput against concurrency](benchmarks-throughput.png)", ""]
    return out


def latency(rows: list[Row]) -> list[str]:
    picked = _pick(rows, "latency")
    if not picked:
        return []
    lines = []
    for r in picked:
        who = r["system"] + (f" {r['version']}" if r.get("version") else "")
        lines.append(
            [
                who,
                str(r.get("db", "")),
                f"**{_fmt(r.get('value'), 2)}**",
                _fmt(r.get("p90_ms"), 2),
                _fmt(r.get("p99_ms"), 2),
                ", ".join(_fmt(x, 2) for x in r.get("round_p99_ms", [])),
                _fmt(r.get("first_step_p50_ms"), 2),
                _fmt(r.get("samples")),
                _ok(r),
            ]
        )
    head = [
        "system",
        "db",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99 per round",
        "first step p50 ms",
        "samples",
        "",
    ]
    return [
        "### 3. Latency (enqueue → start, idle worker)",
        "",
        *_table(head, lines),
        "",
        "![latency](benchmarks-latency.png)",
        "",
    ]


def _simple(
    title: str, bench: str, cols: list[tuple[str, str | Callable[[Row], Any]]]
) -> Callable[[list[Row]], list[str]]:
    def render(rows: list[Row]) -> list[str]:
        picked = _pick(rows, bench)
        if not picked:
            return []
        lines = []
        for r in picked:
            cells = []
            for _, key in cols:
                value = key(r) if callable(key) else r.get(key)
                cells.append(_fmt(value, 2) if isinstance(value, float) else _fmt(value))
            lines.append([*cells, _ok(r)])
        return [f"### {title}", "", *_table([c for c, _ in cols] + [""], lines), ""]

    return render


concurrency = _simple(
    "2. Concurrency (10,000 waiting tasks, one process)",
    "concurrency",
    [
        ("tasks", "tasks"),
        ("wait s", "wait_s"),
        ("completed", "completed"),
        ("first start → last completion s", "value"),
        ("target s", "target_window_s"),
        ("peak RSS MiB", "peak_rss_mb"),
        ("≤ 200 MiB (issue 17)", lambda r: _yes_no(r.get("waiting_rss_met"))),
        ("recovered events", "recovered_events"),
    ],
)
balance = _simple(
    "4. Balance (4 processes × limit 50, 2,000 tasks of 200 ms)",
    "balance",
    [
        ("processes", "workers"),
        ("tasks", "tasks"),
        ("shares", lambda r: " / ".join(str(s) for s in r.get("shares", []))),
        ("deviation %", lambda r: " / ".join(f"{d:+.1f}" for d in r.get("deviations_pct", []))),
        ("max |deviation| %", "value"),
        ("elapsed s", "elapsed_s"),
    ],
)
fairness = _simple(
    "5. Fairness (user A floods 5,000 tasks, user B creates 1)",
    "fairness",
    [
        ("measure", "metric"),
        ("cap per user", "max_running_per_user"),
        ("A's running tasks when B created", "a_running_when_b_created"),
        ("B's task started after s", "value"),
        ("gave up after s", "gave_up_after_s"),
    ],
)
recovery = _simple(
    "6. Recovery (SIGKILL a worker running 200 tasks)",
    "recovery",
    [
        ("tasks", "tasks"),
        ("completed", "completed"),
        ("kill → all completed s", "value"),
        ("target s", "target_s"),
        ("recovered events", "recovered_events"),
        ("double executions", "double_executions"),
    ],
)
api_throughput = _simple(
    "7. Throughput through the API beside Backstage (8 clients, POST /v2/tasks, until completed)",
    "api_throughput",
    [
        ("db", "db"),
        ("tasks", "tasks"),
        ("tasks/s", "value"),
        ("Backstage tasks/s (same run)", "backstage_tasks_per_s"),
        ("× Backstage (target ≥ 30)", "times_backstage"),
        (
            "server CPU ms/task F / B",
            lambda r: _pair(r, "server_cpu_ms_per_task", "backstage_server_cpu_ms_per_task"),
        ),
        ("POST p50 ms F / B", lambda r: _pair(r, "post_p50_ms", "backstage_post_p50_ms")),
        ("idle RSS MiB F / B", lambda r: _pair(r, "idle_rss_mb", "backstage_idle_rss_mb")),
        ("load", "load_avg"),
    ],
)
api_sse = _simple(
    "8. 1,000 SSE clients on one API process (tasks run on another process)",
    "api_sse",
    [
        ("clients", "clients"),
        ("exact streams", "value"),
        ("gaps", "streams_with_gaps"),
        ("duplicates", "streams_with_duplicates"),
        ("events delivered", "events_delivered"),
        (
            "push delay p50 / p99 ms (target 20 / 100)",
            lambda r: _pair(r, "push_delay_p50_ms", "push_delay_p99_ms"),
        ),
        ("API CPU µs/event", "api_cpu_us_per_event"),
        ("API peak RSS MiB", "api_peak_rss_mb"),
        ("load", "load_avg"),
    ],
)

cli_start = _simple(
    "15. The command line's start (fresh processes, alternating, medians)",
    "cli_start",
    [
        ("measure", "metric"),
        ("Falsework s", "falsework_s"),
        ("peer", "peer"),
        ("peer s", "peer_s"),
        ("× the peer (≤ 1 is the target)", "value"),
        ("CPU × the peer", "cpu_ratio"),
        ("rounds", "rounds"),
        ("load", "load_avg"),
    ],
)
security = _simple(
    "12. A hostile template author (one serve process; /healthz probed every 10 ms)",
    "security",
    [
        ("measure", "metric"),
        ("p99 ms / MB", "value"),
        ("p50 ms", "p50"),
        ("max ms", "max"),
        ("probes", "probes"),
        ("server RSS idle / after MB", lambda r: _pair(r, "idle_mb", "after_mb")),
    ],
)


def figures(rows: list[Row]) -> list[str]:
    """Issue 3's figures (bench.fetch_template, bench.render): every line as it came."""
    picked = [r for r in rows if r.get("bench") in ("fetch_template", "render")]
    picked = [r for r in picked if r.get("metric") != "error"]
    if not picked:
        return []
    keys: list[str] = []
    for r in picked:
        for k in r:
            if k not in keys and k not in ("bench", "cpus", "python", "platform"):
                keys.append(k)
    lines = [[_fmt(r.get(k), 2) if isinstance(r.get(k), float) else _fmt(r.get(k)) for k in keys]
             for r in picked]  # fmt: skip
    return ["### 9. Templates: fetch:template and input rendering", "", *_table(keys, lines), ""]


def templates_test(rows: list[Row]) -> list[str]:
    """Issue 14's figure (bench.templates_test)."""
    picked = [r for r in _pick(rows, "templates_test", "suite_seconds")]
    if not picked:
        return []
    lines = [
        [
            _fmt(r.get("cases")),
            _fmt(r.get("value"), 2),
            _fmt(r.get("per_case_ms")),
            _fmt(r.get("first_run_s"), 2),
            _fmt(r.get("runs")),
            _ok(r),
        ]
        for r in picked
    ]
    header = ["cases", "suite s (median)", "ms per case", "first run s", "runs", "< 10 s"]
    return ["### 10. `falsework templates test`: 100 cases", "", *_table(header, lines), ""]


def _ms(summary: Any) -> str:
    if not isinstance(summary, Mapping):
        return "—"
    return " / ".join(_fmt(summary.get(k), 1) for k in ("p50_ms", "p99_ms", "max_ms"))


def retention(rows: list[Row]) -> list[str]:
    """Issue 16's figures (bench.retention): a retention pass at N events, and the
    hot queries at that size."""
    passes = _pick(rows, "retention", "retention_pass_s")
    if not passes:
        return []
    lines = [
        [
            str(r.get("db")),
            _fmt(r.get("events")),
            f"{_fmt(r.get('tasks_deleted'))} / {_fmt(r.get('events_deleted'))}",
            f"**{_fmt(r.get('value'), 2)}**",
            _fmt(r.get("events_per_s")),
            _fmt(r.get("batches")),
            _ms(r.get("batch_ms")),
            _ms(r.get("claim_ms_before")),
            _ms(r.get("claim_ms_during")),
            "— (autovacuum)"
            if r.get("db") == "postgres"
            else f"{_fmt(r.get('reclaim_s'), 2)} ({_ms(r.get('claim_ms_during_reclaim'))})",
            f"{_fmt(r.get('size_mb_before'))} → {_fmt(r.get('size_mb_after'))}",
        ]
        for r in passes
    ]
    header = [
        "db",
        "events",
        "tasks / events deleted",
        "pass s",
        "events/s",
        "batches",
        "batch ms p50 / p99 / max",
        "claim ms before",
        "claim ms during the pass",
        "SQLite page give-back s (claim ms meanwhile)",
        "size MiB",
    ]
    out = ["### 11. Retention at 1 million events", "", *_table(header, lines), ""]
    out[0] += (
        " (and 10 million on Postgres)" if any(r.get("events", 0) > 10**6 for r in passes) else ""
    )
    queries = {(r.get("db"), r.get("events"), r.get("metric")): r for r in _pick(rows, "retention")}
    qlines = []
    for r in passes:
        for metric, when in (
            ("queries_ms", "before the pass"),
            ("queries_ms_after", "right after"),
            ("queries_ms_vacuumed", "after VACUUM"),
        ):
            q = queries.get((r.get("db"), r.get("events"), metric))
            if q is None and metric == "queries_ms_vacuumed":
                continue
            at = q.get("at", {}) if q else {}
            qlines.append(
                [str(r.get("db")), _fmt(r.get("events")), when]
                + [_fmt(at.get(k), 2) for k in ("list", "events", "claim", "gauges", "marks")]
            )
    qheader = ["db", "events", "when", "list + count", "one task's events", "claim", "gauges"]
    qheader.append("runs ended in 20,000 events")
    return [*out, "Median ms of the hot queries:", "", *_table(qheader, qlines), ""]


def updates(rows: list[Row]) -> list[str]:
    """Issue 15's figures (bench.updates)."""
    one = _pick(rows, "updates", "update_seconds")
    fleet = _pick(rows, "updates", "fleet_seconds")
    if not one and not fleet:
        return []
    out = ["### 14. Template updates", ""]
    if one:
        lines = [
            [
                _fmt(r.get("files")),
                _fmt(r.get("value"), 2),
                _fmt(r.get("runs")),
                _fmt(r.get("command_s"), 2),
                _ok(r),
            ]
            for r in one
        ]
        header = ["files", "plan_update s (median)", "runs", "`falsework update` s", "< 2 s"]
        out += [*_table(header, lines), ""]
    if fleet:
        lines = [
            [_fmt(r.get("repositories")), _fmt(r.get("value"), 1), _fmt(r.get("per_repository_ms"))]
            for r in fleet
        ]
        header = ["repositories", "all updated s", "ms per repository"]
        out += [*_table(header, lines), ""]
    return out


def errors(rows: list[Row]) -> list[str]:
    picked = [r for r in rows if r.get("metric") == "error"]
    if not picked:
        return []
    lines = [[str(r.get("bench")), str(r.get("error"))] for r in picked]
    return ["### Benchmarks that did not finish", "", *_table(["benchmark", "why"], lines), ""]


person_task = _simple(
    "16. The task a person starts (create → first event → completed; 50-file skeleton)",
    "person_task",
    [
        ("system", "system"),
        ("steps", "shape"),
        ("runs", "runs"),
        ("first event p50 / p99 ms", lambda r: _ms(r.get("first_event"))),
        ("completed p50 / p99 ms", lambda r: _ms(r.get("completed"))),
        ("failures", "failures"),
        ("Backstage p50 ÷ this p50", "times_backstage_p50"),
    ],
)
throughput_side = _simple(
    "1b. Throughput beside PgQueuer, alternating run by run (issue 17, target 5)",
    "throughput_side",
    [
        ("rounds", "rounds"),
        ("tasks", "tasks"),
        ("Falsework tasks/s (spread)", lambda r: _spread("falsework_tasks_per_s", r)),
        ("PgQueuer jobs/s (spread)", lambda r: _spread("pgqueuer_jobs_per_s", r)),
        ("× PgQueuer (target ≥ 1.5)", "value"),
        ("each round", lambda r: " / ".join(f"{x:.2f}" for x in r.get("round_ratios", []))),
        ("load", "load_avg"),
    ],
)


def _spread(key: str, row: Row) -> str:
    spread = row.get(key.split("_")[0] + "_spread") or []
    inside = "–".join(_fmt(float(x), 0) for x in spread)
    return f"{_fmt(row.get(key), 0)} ({inside})"


def _first(rows: list[Row], bench: str, **match: Any) -> Row | None:
    for r in _pick(rows, bench):
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def _verdict(found: list[Row | None]) -> str:
    if not found or any(r is None for r in found):
        return "not measured in this run"
    return "met" if all(r is not None and r.get("ok") for r in found) else "**missed**"


def issue17(rows: list[Row]) -> list[str]:
    """Issue 17's seven targets, each with its same-run figures and a verdict."""
    if not any(r.get("bench") in ("cli_start", "api_sse", "throughput_side") for r in rows):
        return []
    lines: list[list[str]] = []

    run_ = _first(rows, "cli_start", metric="run_vs_cookiecutter")
    help_ = _first(rows, "cli_start", metric="help_vs_copier")
    lines.append(
        [
            "1. CLI start ≤ the peer",
            f"run {_fmt(run_ and run_.get('value'), 2)}× cookiecutter, "
            f"--help {_fmt(help_ and help_.get('value'), 2)}× copier",
            _verdict([run_, help_]),
        ]
    )
    sse = _first(rows, "api_sse")
    lines.append(
        [
            "2. push delay p50 < 20 ms, p99 < 100 ms, streams exact",
            f"p50 / p99 {_pair(sse, 'push_delay_p50_ms', 'push_delay_p99_ms')} ms, "
            f"{_fmt(sse.get('value'))} of {_fmt(sse.get('clients'))} exact"
            if sse
            else "—",
            _verdict([sse]),
        ]
    )
    api = [_first(rows, "api_throughput", db=db) for db in ("sqlite", "postgres")]
    lines.append(
        [
            "3. through the API ≥ 30× Backstage",
            ", ".join(
                f"{r.get('db')} {_fmt(r.get('times_backstage'), 1)}×" for r in api if r is not None
            )
            or "—",
            _verdict(api),
        ]
    )
    fetch = [
        r
        for r in _pick(rows, "fetch_template")
        if str(r.get("metric", "")).startswith("speedup_vs_") and r.get("mode") == "cold"
    ]
    lines.append(
        [
            "4. fetch:template ≥ 3× cookiecutter, ≥ 5× copier (cold)",
            ", ".join(
                f"{r.get('case')} files {_fmt(r.get('value'), 2)}× "
                f"{str(r.get('metric'))[len('speedup_vs_') :]}"
                for r in fetch
            )
            or "—",
            _verdict(list(fetch) or [None]),
        ]
    )
    side = _first(rows, "throughput_side")
    lat = _first(rows, "latency", system="falsework", db="postgres")
    rounds = len(lat.get("round_p50_ms", [])) if lat else None
    lines.append(
        [
            "5. throughput ≥ 1.5× PgQueuer; latency ahead of both peers in every round",
            f"{_fmt(side and side.get('value'), 2)}× PgQueuer; latency ahead in "
            f"{_fmt(lat and lat.get('rounds_ahead'))} of {_fmt(rounds)} rounds",
            _verdict([side, lat]),
        ]
    )
    person = [r for r in _pick(rows, "person_task") if r.get("times_backstage_p50") is not None]
    lines.append(
        [
            "6. the task a person starts, beside Backstage",
            ", ".join(f"{r.get('shape')} {_fmt(r.get('times_backstage_p50'), 1)}×" for r in person)
            or "—",
            _verdict(list(person) or [None]),
        ]
    )
    conc = _first(rows, "concurrency")
    idle = [r for r in api if r is not None]
    lines.append(
        [
            "7. idle RSS beside Backstage; ≤ 200 MiB with 10,000 waiting tasks",
            "idle "
            + ", ".join(f"{_pair(r, 'idle_rss_mb', 'backstage_idle_rss_mb')} MiB" for r in idle)
            + f"; 10,000 waiting: {_fmt(conc and conc.get('peak_rss_mb'))} MiB",
            _yes_no(conc.get("waiting_rss_met")) if conc else "not measured in this run",
        ]
    )
    return [
        "### Issue 17's targets in this run",
        "",
        *_table(["target", "figures", "verdict"], lines),
        "",
    ]


SECTIONS = [issue17, throughput, throughput_side, concurrency, latency, balance, fairness, recovery]
SECTIONS += [api_throughput, api_sse, figures, templates_test, retention, security]
SECTIONS += [updates, cli_start, person_task, errors]


def render(rows: list[Row]) -> str:
    meta = next((r for r in rows if r.get("bench") == "meta"), {})
    out = []
    if meta:
        out += [
            f"Measured {meta.get('started_at', '?')} on {meta.get('cpus', '?')} CPUs, "
            f"Python {meta.get('python', '?')}, {meta.get('platform', '?')}"
            + (" (**quick smoke run**)" if meta.get("quick") else "")
            + ".",
            "",
        ]
    for section in SECTIONS:
        out += section(rows)
    return "\n".join(out).rstrip() + "\n"


def write(doc: Path, text: str) -> None:
    current = doc.read_text(encoding="utf-8")
    if BEGIN not in current or END not in current:
        raise SystemExit(f"{doc} has no {BEGIN} ... {END} block")
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{BEGIN}\n{text}{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="results → Markdown tables")
    parser.add_argument("source", nargs="?", type=Path, default=RESULTS_DIR / "latest.jsonl")
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args(argv)
    text = render(load(args.source))
    if args.write:
        write(args.write, text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
