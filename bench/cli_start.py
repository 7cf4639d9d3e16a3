"""Benchmark (issue 17, target 1): how long a person waits for the command line.

Side by side, alternating run by run (A B A B ...), each a fresh process:

- ``falsework run examples/templates/hello-world --set name=x -o OUT`` against
  ``cookiecutter --no-input`` rendering a one-file template with one variable;
- ``falsework --help`` against ``copier --help``.

Medians of ``--rounds`` runs each, with the spread (min-max); the ratio is
Falsework's median wall time over the peer's (target: <= 1.0). Beside it, each
side's CPU time (user + system of the process, from ``os.wait4``) and its ratio:
on a shared machine the wall time mostly says how long a process waited for a
CPU, the CPU time what it asked of one. Run in ``.venv-bench``,
where the peers are installed (``make bench``). Neither command has a terminal
(stdin from /dev/null, output captured): ``falsework run`` then takes its
front door without Typer or Rich (``cli/quickrun.py``), as in a script or CI.

The peers are installed from wheels, so pip compiled their bytecode; Falsework is
installed editable, and with ``PYTHONDONTWRITEBYTECODE`` set (as on the
benchmark machine) it would compile every module of its own at each start. The
bench compiles the package once first (``compileall``), as installing it from
its wheel would.

    python -m bench.cli_start [--rounds 9] [--quick]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import falsework as package
from bench.common import REPO_ROOT, emit, log

ROOT = REPO_ROOT
HELLO = ROOT / "examples" / "templates" / "hello-world"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    other = shutil.which(name)
    if other is None:
        raise SystemExit(f"{name} is not installed here: run in .venv-bench (make bench)")
    return other


def _cookiecutter_template(root: Path) -> Path:
    template = root / "cc-template"
    (template / "{{cookiecutter.name}}").mkdir(parents=True)
    (template / "cookiecutter.json").write_text(json.dumps({"name": "world"}), encoding="utf-8")
    (template / "{{cookiecutter.name}}" / "hello.txt").write_text(
        "Hello, {{ cookiecutter.name }}!\n", encoding="utf-8"
    )
    return template


def _timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one run of ``argv``."""
    started = time.perf_counter()
    # no terminal for either (as in CI or a script): the same whether `make bench`
    # runs in a terminal or not (on one, `falsework run` would offer to ask)
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(child.pid, 0)
        took = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            text = err.read().decode(errors="replace")
            raise SystemExit(f"{argv[0]} failed ({code}): {text[-2000:]}")
    return took, usage.ru_utime + usage.ru_stime


def _pair(
    name: str, ours: list[str], peer_name: str, peer: list[str], rounds: int, work: Path
) -> None:
    mine: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    _timed(ours, work)  # warm the file system cache for both
    _timed(peer, work)
    for i in range(rounds):
        first, second = (ours, peer) if i % 2 == 0 else (peer, ours)
        a = _timed(first, work)
        b = _timed(second, work)
        mine.append(a if first is ours else b)
        theirs.append(b if first is ours else a)
        shutil.rmtree(work / "out", ignore_errors=True)
    ours_s, peer_s = (statistics.median(w for w, _ in side) for side in (mine, theirs))
    ours_cpu, peer_cpu = (statistics.median(c for _, c in side) for side in (mine, theirs))
    ratio = ours_s / peer_s
    log(
        f"{name}: falsework {ours_s:.3f} s, {peer_name} {peer_s:.3f} s, ratio {ratio:.2f}; "
        f"CPU {ours_cpu:.3f} vs {peer_cpu:.3f} s, ratio {ours_cpu / peer_cpu:.2f}"
    )
    emit(
        "cli_start",
        "falsework",
        name,
        round(ratio, 2),
        falsework_s=round(ours_s, 3),
        falsework_spread=[round(min(w for w, _ in mine), 3), round(max(w for w, _ in mine), 3)],
        peer=peer_name,
        peer_s=round(peer_s, 3),
        peer_spread=[round(min(w for w, _ in theirs), 3), round(max(w for w, _ in theirs), 3)],
        falsework_cpu_s=round(ours_cpu, 3),
        peer_cpu_s=round(peer_cpu, 3),
        cpu_ratio=round(ours_cpu / peer_cpu, 2),
        load_avg=round(os.getloadavg()[0], 2),
        rounds=rounds,
        ok=ratio <= 1.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    falsework, cookiecutter, copier = _tool("falsework"), _tool("cookiecutter"), _tool("copier")
    compileall.compile_dir(Path(package.__file__).parent, quiet=1)
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        template = _cookiecutter_template(work)
        out = str(work / "out")
        _pair(
            "run_vs_cookiecutter",
            [falsework, "run", str(HELLO), "--set", "name=x", "-o", out],
            "cookiecutter",
            [cookiecutter, "--no-input", "-f", "-o", out, str(template), "name=x"],
            rounds,
            work,
        )
        _pair(
            "help_vs_copier",
            [falsework, "--help"],
            "copier",
            [copier, "--help"],
            rounds,
            work,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
