"""Figure: fetch:template on a generated 1,000-file skeleton vs cookiecutter and copier.

One skeleton, written three times in each tool's syntax (Falsework/Backstage
``${{ values.x }}``, cookiecutter ``{{ cookiecutter.x }}``, copier ``{{ x }}``):
1,000 text files in 50 folders, each ~40 lines with six substitutions, an
``{% if %}`` and a ``{% for %}``; every tenth file name is templated. Each tool
renders it into a fresh folder; the figure is files/s (median of the runs) and
Falsework's ratio against the two. Every run starts with a cold compile cache
(a new Renderer / a new cookiecutter or copier call): nothing is reused
between runs, as for a task whose template a worker has not seen yet.

Falsework runs the real thing: a one-step task through the WorkflowRunner with
an in-memory TaskIO (its 1,000+ log events included).

    python -m bench.fetch_template [--quick]
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


def write_skeleton(root: Path, var: Callable[[str], str], name_var: str) -> int:
    count = 0
    for folder in range(FOLDERS):
        base = root / f"pkg{folder:02d}"
        base.mkdir(parents=True, exist_ok=True)
        for n in range(FILES // FOLDERS):
            i = folder * (FILES // FOLDERS) + n
            name = f"{name_var}_mod{i}.py" if i % 10 == 0 else f"mod{i}.py"
            text = syntax(BODY, var, lambda t: "{% " + t + " %}").replace("{i}", str(i))
            text = text.replace("{{NAME}}", "{NAME}").replace("{{OWNER}}", "{OWNER}")
            text = text.replace("{{PORT}}", "{PORT}")
            (base / name).write_text(text + FILLER)
            count += 1
    return count


def falsework_tree(root: Path) -> Path:
    skel = root / "skeleton"
    write_skeleton(skel, lambda k: "${{ values." + k + " }}", "${{ values.name }}")
    (root / "template.yaml").write_text("kind: Template\n")
    return root


def cookiecutter_tree(root: Path) -> Path:
    inner = root / "{{ cookiecutter.project }}"
    write_skeleton(inner, lambda k: "{{ cookiecutter." + k + " }}", "{{ cookiecutter.name }}")
    (root / "cookiecutter.json").write_text(json.dumps({"project": "out", **VALUES}))
    return root


def copier_tree(root: Path) -> Path:
    write_skeleton(root, lambda k: "{{ " + k + " }}", "{{ name }}")
    config = {"_templates_suffix": "", **{k: {"default": v} for k, v in VALUES.items()}}
    config["meta"] = {"default": VALUES["meta"], "type": "yaml"}
    import yaml

    (root / "copier.yml").write_text(yaml.safe_dump(config))
    return root


def check_output(root: Path) -> int:
    files = [p for p in root.rglob("*.py") if p.is_file()]
    sample = next(p for p in files if p.name.startswith("payments_mod"))
    text = sample.read_text()
    assert 'NAME = "payments"' in text and "PORT = 8080" in text and '"api",' in text, text[:400]
    return len(files)


async def run_falsework(template: Path, out: Path) -> float:
    runner = WorkflowRunner(ActionRegistry.builtin(), Renderer(), work_dir=out.parent)
    spec = {
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
    started = time.perf_counter()
    await runner.run(LocalTask(spec=spec), MemoryTaskIO(), workspace=out)
    return time.perf_counter() - started


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = 1 if args.quick else 3
    work = Path(tempfile.mkdtemp(prefix="fw-bench-fetch-"))
    try:
        sources = {
            "falsework": falsework_tree(work / "src-falsework"),
            "cookiecutter": cookiecutter_tree(work / "src-cookiecutter"),
            "copier": copier_tree(work / "src-copier"),
        }
        rates: dict[str, float] = {}
        for system in ("falsework", "cookiecutter", "copier"):
            times = []
            for n in range(runs):
                out = work / f"out-{system}-{n}"
                out.mkdir()
                log(system, "run", n + 1, "of", runs)
                if system == "falsework":
                    elapsed = asyncio.run(run_falsework(sources[system], out))
                elif system == "cookiecutter":
                    elapsed = run_cookiecutter(sources[system], out)
                else:
                    elapsed = run_copier(sources[system], out)
                written = check_output(out)
                assert written == FILES, (system, written)
                times.append(elapsed)
                shutil.rmtree(out)
            rates[system] = FILES / statistics.median(times)
            emit(
                "fetch_template",
                system,
                "files_per_s",
                round(rates[system]),
                files=FILES,
                runs=runs,
                median_s=round(statistics.median(times), 3),
                **machine(),
            )
        for other in ("cookiecutter", "copier"):
            emit(
                "fetch_template",
                "falsework",
                f"speedup_vs_{other}",
                round(rates["falsework"] / rates[other], 2),
                files=FILES,
                **machine(),
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
