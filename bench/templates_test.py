"""Figure: `falsework templates test` on a suite of 100 cases over the example
templates (issue 14: under 10 s on this machine).

The suite: the examples' own cases (their snapshots, their matrix) and generated
ones up to 100: python-service with varied answers page by page (names, Python
versions, Dockerfile or not, tags, remotes), hello-world names, both failures of
fail, wait's durations. The first run writes the generated cases' snapshots;
then the timed runs: a real `falsework templates test DIR --ci` process each
(Python start and imports included), every case rehearsed and compared with its
snapshot. Median of the runs.

    python -m bench.templates_test [--quick]
"""

from __future__ import annotations

import argparse
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
        times = []
        for i in range(runs):
            seconds, done = run(root, "--ci")
            if done.returncode != 0:
                raise SystemExit(f"run {i + 1} failed:\n{done.stdout}{done.stderr}")
            passed = done.stdout.splitlines()[-1]
            log(f"run {i + 1}: {seconds:.2f} s ({passed})")
            times.append(seconds)
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
        target_s=TARGET_S,
        ok=median < TARGET_S,
        **machine(),
    )


if __name__ == "__main__":
    main()
