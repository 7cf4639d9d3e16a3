"""Figure (issue 17, target 4): fetch:template against cookiecutter and copier.

Two skeletons, each written three times in each tool's syntax (Falsework/Backstage
``${{ values.x }}``, cookiecutter ``{{ cookiecutter.x }}``, copier ``{{ x }}``):

- ``1000``: 1,000 text files in 50 folders, each ~40 lines with six
  substitutions, an ``{% if %}`` and a ``{% for %}``; every tenth file name is
  templated. Every file differs from the others (its number is in its text).
- ``50``: a realistic service skeleton: 50 files in 8 folders, 5 of them (10 %)
  templated as above, one of those a templated name; the others source files,
  configuration and docs with no template syntax, and 2 small binary files.

Each tool renders a skeleton into a fresh folder; the figure is files/s (the
median of the runs, with the spread) and Falsework's ratio against the two. The
three tools alternate run by run (A B C, B C A, C A B, ...), so a noisy machine
weighs on each alike.

Falsework runs the real thing: one-step tasks through the WorkflowRunner with an
in-memory TaskIO (its log events included). Two figures per round:

- ``cold``: the first task of a new runner (a new Renderer: nothing compiled),
  as for a worker that has not seen the template yet;
- ``warm``: a second task of the same template on that runner, as for a worker
  that has run it before (its compile cache keyed by each file's content; a
  changed file compiles anew). cookiecutter and copier keep nothing between runs.

Deleting: every output folder stays on disk until all the cases have run. On
ext4 (this machine's root) a new file's inode is searched for past every inode
of its group freed in the last few seconds (the kernel's ``recently_deleted``
check, one inode-table lookup each): deleting each run's output before the next
run made every later file creation slower, by up to ~0.4 ms a file in a
perf-profiled probe, the same absolute cost for each tool, so it decided the
50-file case's ratios (docs/benchmarks.md, "fetch:template and ext4's recently
deleted inodes").

    python -m bench.fetch_template [--quick] [--case 1000|50|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import emit, log, machine
from falsework.actions import ActionRegistry
from falsework.runner import LocalTask, MemoryTaskIO, WorkflowRunner
from falsework.templating import Renderer

FILES = 1_000
FOLDERS = 50
VALUES: dict[str, Any] = {
    "name": "payments",
    "owner": "team-payments",
    "port": 8080,
    "docker": True,
    # a dict, not a list: cookiecutter reads a top-level list as a choice
    "meta": {"tags": ["python", "api", "payments"]},
}

BODY = """# generated file {i} of @name@
# owner: @owner@
import os

NAME = "@name@"
OWNER = "@owner@"
PORT = @port@


def describe_{i}() -> str:
    return f"{{NAME}} ({{OWNER}}) on {{PORT}}"

[% if docker %]
DOCKER_IMAGE = "registry.example.com/@name@:latest"
[% endif %]
TAGS = [
[% for tag in tags %]    "@tag@",
[% endfor %]]
"""
FILLER = "".join(
    f"# line {n}: nothing to render here, plain text of a source file\n" for n in range(20)
)


def syntax(text: str, var: Callable[[str], str], tag: Callable[[str], str]) -> str:
    out = text
    for key in ("name", "owner", "port"):
        out = out.replace(f"@{key}@", var(key))
    # the loop variable is a plain name in each syntax
    out = out.replace("@tag@", "${{ tag }}" if var("x").startswith("$") else "{{ tag }}")
    out = out.replace("[% if docker %]", tag("if " + var_name(var, "docker")))
    out = out.replace("[% endif %]", tag("endif"))
    out = out.replace("[% for tag in tags %]", tag("for tag in " + var_name(var, "meta") + ".tags"))
    out = out.replace("[% endfor %]", tag("endfor"))
    return out


def var_name(var: Callable[[str], str], key: str) -> str:
    return var(key).strip("${} ").strip()


def _templated(i: int, var: Callable[[str], str]) -> str:
    text = syntax(BODY, var, lambda t: "{% " + t + " %}").replace("{i}", str(i))
    text = text.replace("{{NAME}}", "{NAME}").replace("{{OWNER}}", "{OWNER}")
    return text.replace("{{PORT}}", "{PORT}") + FILLER


def write_skeleton(root: Path, var: Callable[[str], str], name_var: str) -> int:
    """The 1,000-file skeleton: every file templated, each one different."""
    count = 0
    for folder in range(FOLDERS):
        base = root / f"pkg{folder:02d}"
        base.mkdir(parents=True, exist_ok=True)
        for n in range(FILES // FOLDERS):
            i = folder * (FILES // FOLDERS) + n
            name = f"{name_var}_mod{i}.py" if i % 10 == 0 else f"mod{i}.py"
            (base / name).write_text(_templated(i, var))
            count += 1
    return count


# The realistic skeleton's plain files: (folder, name, lines), no template syntax.
PLAIN_KINDS = {
    ".py": "def handler_{n}(event: dict) -> dict:\n    return {{'ok': True, 'n': {n}}}\n",
    ".md": "## Section {n}\n\nHow this part of the service works, in prose.\n",
    ".yaml": "key_{n}:\n  enabled: true\n  items: [a, b, c]\n",
    ".toml": "[section_{n}]\nvalue = {n}\n",
}
REALISTIC_FOLDERS = ("src/app", "src/app/api", "tests", "docs", "deploy", ".github", "ci", "")
REALISTIC_FILES = 50
REALISTIC_TEMPLATED = 5
REALISTIC_BINARY = 2


def write_realistic(root: Path, var: Callable[[str], str], name_var: str) -> int:
    """The 50-file service skeleton: 5 files templated (one with a templated
    name), 43 plain text files of 10 to 200 lines, 2 small binary files."""
    count = 0
    kinds = list(PLAIN_KINDS)
    for i in range(REALISTIC_FILES):
        folder = root / REALISTIC_FOLDERS[i % len(REALISTIC_FOLDERS)]
        folder.mkdir(parents=True, exist_ok=True)
        if i < REALISTIC_TEMPLATED:
            name = f"{name_var}_main.py" if i == 0 else f"settings{i}.py"
            (folder / name).write_text(_templated(i, var))
        elif i < REALISTIC_TEMPLATED + REALISTIC_BINARY:
            # a favicon-like blob: a NUL byte makes it binary for every tool
            (folder / f"icon{i}.png").write_bytes(bytes(range(256)) * (4 + i))
        else:
            ext = kinds[i % len(kinds)]
            lines = 10 + (i * 37) % 190
            chunk = PLAIN_KINDS[ext]
            text = "".join(chunk.format(n=n) for n in range(lines // chunk.count("\n") + 1))
            (folder / f"file{i}{ext}").write_text(text)
        count += 1
    return count


Writer = Callable[[Path, Callable[[str], str], str], int]
CASES: dict[str, tuple[Writer, int]] = {
    "1000": (write_skeleton, FILES),
    "50": (write_realistic, REALISTIC_FILES),
}


def falsework_tree(root: Path, writer: Writer = write_skeleton) -> Path:
    skel = root / "skeleton"
    writer(skel, lambda k: "${{ values." + k + " }}", "${{ values.name }}")
    (root / "template.yaml").write_text("kind: Template\n")
    return root


def cookiecutter_tree(root: Path, writer: Writer = write_skeleton) -> Path:
    inner = root / "{{ cookiecutter.project }}"
    writer(inner, lambda k: "{{ cookiecutter." + k + " }}", "{{ cookiecutter.name }}")
    (root / "cookiecutter.json").write_text(json.dumps({"project": "out", **VALUES}))
    return root


def copier_tree(root: Path, writer: Writer = write_skeleton) -> Path:
    writer(root, lambda k: "{{ " + k + " }}", "{{ name }}")
    config = {"_templates_suffix": "", **{k: {"default": v} for k, v in VALUES.items()}}
    config["meta"] = {"default": VALUES["meta"], "type": "yaml"}
    import yaml

    (root / "copier.yml").write_text(yaml.safe_dump(config))
    return root


def check_output(root: Path) -> int:
    """The files written (copier's answers file aside), one templated file checked."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".copier")]
    sample = next(p for p in files if p.name.startswith("payments_"))
    text = sample.read_text()
    assert 'NAME = "payments"' in text and "PORT = 8080" in text and '"api",' in text, text[:400]
    return len(files)


def _spec(template: Path) -> dict[str, Any]:
    return {
        "steps": [
            {
                "id": "fetch",
                "action": "fetch:template",
                "input": {"url": "./skeleton", "values": VALUES},
            },
        ],
        "parameters": {},
        "templateInfo": {"baseUrl": (template / "template.yaml").as_uri()},
    }


async def run_falsework(template: Path, out: Path, warm_out: Path | None = None) -> list[float]:
    """The first task of a new runner (cold), then with ``warm_out`` a second
    task of the same template on it (warm): their seconds."""
    runner = WorkflowRunner(ActionRegistry.builtin(), Renderer(), work_dir=out.parent)
    took = []
    for workspace in (out, warm_out):
        if workspace is None:
            continue
        started = time.perf_counter()
        await runner.run(LocalTask(spec=_spec(template)), MemoryTaskIO(), workspace=workspace)
        took.append(time.perf_counter() - started)
    return took


def run_cookiecutter(template: Path, out: Path) -> float:
    from cookiecutter.main import cookiecutter

    started = time.perf_counter()
    cookiecutter(str(template), no_input=True, output_dir=str(out), extra_context=dict(VALUES))
    return time.perf_counter() - started


def run_copier(template: Path, out: Path) -> float:
    import copier

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(template), str(out), data=dict(VALUES), defaults=True, unsafe=True, quiet=True
        )
    return time.perf_counter() - started


PEERS = ("cookiecutter", "copier")


def _round(case: str, sources: dict[str, Path], work: Path, n: int) -> dict[str, float]:
    """One run of each tool, starting with a different one each round."""
    files = CASES[case][1]
    order = ["falsework", *PEERS]
    order = order[n % 3 :] + order[: n % 3]
    took: dict[str, float] = {}
    for system in order:
        out = work / f"out-{case}-{system}-{n}"
        out.mkdir()
        if system == "falsework":
            warm = work / f"out-{case}-warm-{n}"
            warm.mkdir()
            took["falsework"], took["falsework_warm"] = asyncio.run(
                run_falsework(sources[system], out, warm)
            )
            assert check_output(warm) == files, ("warm", check_output(warm))
        elif system == "cookiecutter":
            took[system] = run_cookiecutter(sources[system], out)
        else:
            took[system] = run_copier(sources[system], out)
        written = check_output(out)
        assert written == files, (system, written)
        # Kept until every case has run (see the module's docstring, "Deleting").
    return took


def create_cost(folder: Path, files: int = 200) -> float:
    """Microseconds to create and write one small file in a new folder, the
    median of ``files``: the file system's own part of every tool's figure,
    emitted beside them (on ext4 it rises after many recent deletions)."""
    folder.mkdir()
    took = []
    for n in range(files):
        started = time.perf_counter()
        (folder / f"f{n}").write_bytes(b"x" * 2048)
        took.append(time.perf_counter() - started)
    return statistics.median(took) * 1e6


def bench_case(case: str, runs: int, work: Path) -> None:
    writer, files = CASES[case]
    emit(
        "fetch_template",
        "filesystem",
        "create_us_per_file",
        round(create_cost(work / f"probe-{case}"), 1),
        case=case,
        folder=str(work.parent),
        **machine(),
    )
    sources = {
        "falsework": falsework_tree(work / f"src-{case}-falsework", writer),
        "cookiecutter": cookiecutter_tree(work / f"src-{case}-cookiecutter", writer),
        "copier": copier_tree(work / f"src-{case}-copier", writer),
    }
    times: dict[str, list[float]] = {}
    for n in range(runs):
        log(f"{case} files: round {n + 1} of {runs}")
        for system, took in _round(case, sources, work, n).items():
            times.setdefault(system, []).append(took)
    medians = {system: statistics.median(values) for system, values in times.items()}
    for system, values in times.items():
        name, _, mode = system.partition("_")
        emit(
            "fetch_template",
            name,
            "files_per_s",
            round(files / medians[system]),
            case=case,
            mode=(mode or "cold") if name == "falsework" else "—",
            files=files,
            runs=runs,
            median_s=round(medians[system], 4),
            spread_s=[round(min(values), 4), round(max(values), 4)],
            **machine(),
        )
    for mode, ours in (("cold", "falsework"), ("warm", "falsework_warm")):
        for other, target in zip(PEERS, (3.0, 5.0), strict=True):
            ratio = medians[other] / medians[ours]
            emit(
                "fetch_template",
                "falsework",
                f"speedup_vs_{other}",
                round(ratio, 2),
                case=case,
                mode=mode,
                files=files,
                target=target,
                ok=ratio >= target,
                **machine(),
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--case", choices=("1000", "50", "both"), default="both")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fw-bench-fetch-"))
    try:
        for case in ("1000", "50") if args.case == "both" else (args.case,):
            # the 50-file case takes a few tens of ms a run: more runs
            runs = 1 if args.quick else (5 if case == "1000" else 15)
            bench_case(case, runs, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
