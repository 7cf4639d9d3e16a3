"""Figure: `falsework templates test` on a suite of 100 cases over the example
templates (issue 14: under 10 s on this machine).

The suite: the examples' own cases (their snapshots, their matrix) and generated
ones up to 100: python-service with varied answers page by page (names, Python
versions, Dockerfile or not, tags, remotes), hello-world names, both failures of
fail, wait's durations. The first run writes the generated cases' snapshots;
then the timed runs: a real `falsework templates test DIR --ci` process each
(Python start and imports included), every case rehearsed and compared with its
snapshot. Median of the runs, and of the suite's own time as its summary line
gives it (the process less its start-up and imports: on a loaded machine the
start-up is most of the difference).

Then upgrade cases (``upgrade-from:``), apart: the copy becomes a git repository
tagged v1, python-service's skeleton changes (a README line, a dev dependency),
and ``UPGRADES`` cases update a repository made at v1 and edited by its team (a
file added, one deleted) to that working copy. Timed like the suite, with
``-k upgrade-``; per upgrade case against per ordinary case of the same run.

    python -m bench.templates_test [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.common import REPO_ROOT, emit, log, machine

CASES = 100
UPGRADES = 10
TARGET_S = 10.0
FALSEWORK = Path(sys.executable).with_name("falsework")


def _case(folder: Path, values: object, expect: dict[str, object] | None = None) -> None:
    folder.mkdir(parents=True)
    (folder / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    if expect:
        (folder / "expect.yaml").write_text(yaml.safe_dump(expect, sort_keys=False))


def _count(root: Path) -> int:
    found = 0
    for tests in root.glob("*/tests"):
        found += sum(1 for p in tests.iterdir() if (p / "values.yaml").is_file())
        matrix = tests / "matrix.yaml"
        if matrix.is_file():
            vary = yaml.safe_load(matrix.read_text())["vary"]
            combos = 1
            for options in vary.values():
                combos *= len(options)
            found += combos
    return found


def build(root: Path) -> int:
    """The examples and generated cases: exactly ``CASES`` in all."""
    shutil.copytree(REPO_ROOT / "examples" / "templates", root)
    have = _count(root)
    versions = ["3.11", "3.12", "3.13"]
    n = 0
    while have < CASES:
        n += 1
        kind = n % 5
        if kind in (0, 1, 2):
            pages = [
                {
                    "name": f"service-{n:03d}",
                    "owner": f"group:default/team-{n % 7}",
                    "pythonVersion": versions[n % 3],
                    "docker": n % 2 == 0,
                    "tags": ["python", f"t{n}"],
                },
                {
                    "repoUrl": f"github.com?owner=acme&repo=service-{n:03d}",
                    **({"remoteUrl": f"https://git.example.com/s{n}.git"} if n % 4 else {}),
                },
            ]
            _case(root / "python-service" / "tests" / f"gen-{n:03d}", pages)
        elif kind == 3:
            _case(root / "hello-world" / "tests" / f"gen-{n:03d}", {"name": f"Person {n}"})
        else:
            failure = "missing-file" if n % 2 else "outside-workspace"
            _case(
                root / "fail" / "tests" / f"gen-{n:03d}",
                {"failure": failure},
                {"status": "failed"},
            )
        have += 1
    return have


def add_upgrades(root: Path) -> None:
    """The copy as a git repository tagged v1, python-service changed since, and
    ``UPGRADES`` upgrade cases from v1 to that working copy."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    env |= {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
    env |= {"GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["commit", "-qm", "v1"],
        ["tag", "v1"],
    ):
        subprocess.run(["git", *args], cwd=root, env=env, check=True)
    service = root / "python-service"
    readme = service / "skeleton" / "README.md"
    readme.write_text(
        readme.read_text().replace(".venv/bin/pytest\n", ".venv/bin/pytest\nmake lint\n")
    )
    pyproject = service / "skeleton" / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('["pytest>=8"]', '["pytest>=8", "ruff>=0.5"]')
    )
    for n in range(UPGRADES):
        pages = [
            {"name": f"upgraded-{n}", "owner": "group:default/payments-team"},
            {"repoUrl": f"github.com?owner=acme&repo=upgraded-{n}"},
        ]
        folder = service / "tests" / f"upgrade-{n}"
        _case(folder, pages, {"upgrade-from": "v1", "deleted": ["tests/test_app.py"]})
        (folder / "edits").mkdir()
        (folder / "edits" / "NOTES.md").write_text(f"Team {n}'s notes.\n")


def in_process(done: subprocess.CompletedProcess[str]) -> float:
    """The suite's own seconds, from its summary line (``... in 1.23s``)."""
    found = re.search(r" in ([0-9.]+)s$", done.stdout.strip().splitlines()[-1])
    assert found is not None, done.stdout
    return float(found.group(1))


def timed(root: Path, runs: int, label: str, *args: str) -> tuple[list[float], list[float]]:
    """``runs`` timed ``--ci`` runs: (process seconds, the suite's own seconds)."""
    times: list[float] = []
    own: list[float] = []
    for i in range(runs):
        seconds, done = run(root, "--ci", *args)
        if done.returncode != 0:
            raise SystemExit(f"{label} run {i + 1} failed:\n{done.stdout}{done.stderr}")
        log(f"{label} run {i + 1}: {seconds:.2f} s ({done.stdout.splitlines()[-1]})")
        times.append(seconds)
        own.append(in_process(done))
    return times, own


def run(root: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [str(FALSEWORK), "templates", "test", str(root), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one timed run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="bench-templates-test-") as tmp:
        root = Path(tmp) / "templates"
        cases = build(root)
        first, done = run(root)
        if done.returncode != 0:
            raise SystemExit(f"the first run failed:\n{done.stdout}{done.stderr}")
        log(f"{cases} cases; first run (writes the new snapshots) {first:.2f} s")
        times, own = timed(root, runs, "suite")
        add_upgrades(root)
        first_upgrade, done = run(root, "-k", "upgrade-")
        if done.returncode != 0:
            raise SystemExit(f"the first upgrade run failed:\n{done.stdout}{done.stderr}")
        up_times, up_own = timed(root, runs, "upgrades", "-k", "upgrade-")
    median = statistics.median(times)
    emit(
        "templates_test",
        "falsework",
        "suite_seconds",
        round(median, 2),
        cases=cases,
        runs=runs,
        first_run_s=round(first, 2),
        per_case_ms=round(median / cases * 1000, 1),
        suite_in_process_s=round(statistics.median(own), 2),
        in_process_per_case_ms=round(statistics.median(own) / cases * 1000, 1),
        spread_s=[round(t, 2) for t in times],
        target_s=TARGET_S,
        ok=median < TARGET_S,
        load=os.getloadavg()[0],
        **machine(),
    )
    emit(
        "templates_test",
        "falsework",
        "upgrade_cases_seconds",
        round(statistics.median(up_times), 2),
        cases=UPGRADES,
        runs=runs,
        first_run_s=round(first_upgrade, 2),
        in_process_s=round(statistics.median(up_own), 2),
        in_process_per_case_ms=round(statistics.median(up_own) / UPGRADES * 1000, 1),
        spread_s=[round(t, 2) for t in up_times],
        load=os.getloadavg()[0],
        **machine(),
    )


if __name__ == "__main__":
    main()
