"""Figure: rendering a typical step input (issue 3: ≥ 20,000 renders/s).

Two inputs. "typical" is the ``fetch:template`` step of the template recorded
against a real Backstage (``url`` plus two values, as most steps are); "large"
is a heavy one: a target path and ten values mixing lone expressions (type
kept), string concatenation and filters (``replace``, ``parseRepoUrl``,
``projectSlug``, ``dump``). The renderer compiles each source once and caches
it, as in a running worker; the figure is renders of the whole input per
second, on one core.

Also reported: the runner's own per-task cost for a one-step ``debug:log``
task with an in-memory TaskIO (no database), i.e. the ceiling the runner puts
on the engine's throughput.

    python -m bench.render [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import emit, log, machine
from falsework.actions import ActionRegistry
from falsework.runner import LocalTask, MemoryTaskIO, WorkflowRunner
from falsework.templating import Renderer

TYPICAL_INPUT: dict[str, Any] = {
    "url": "./skeleton",
    "values": {"name": "${{ parameters.name }}", "description": "${{ parameters.description }}"},
}

STEP_INPUT: dict[str, Any] = {
    "url": "./skeleton",
    "targetPath": "${{ parameters.name }}",
    "values": {
        "name": "${{ parameters.name }}",
        "packageName": "${{ parameters.name | replace('-', '_') }}",
        "description": "${{ parameters.description }}",
        "owner": "${{ parameters.owner }}",
        "port": "${{ parameters.port }}",
        "tags": "${{ parameters.tags }}",
        "repo": "${{ (parameters.repoUrl | parseRepoUrl).repo }}",
        "slug": "${{ parameters.repoUrl | projectSlug }}",
        "title": "Service ${{ parameters.name }} owned by ${{ parameters.owner }}",
        "extra": "${{ parameters.extra | dump }}",
    },
}

CONTEXT: dict[str, Any] = {
    "parameters": {
        "name": "payments-api",
        "description": "Takes the money.",
        "owner": "group:default/payments",
        "port": 8080,
        "tags": ["python", "api"],
        "repoUrl": "github.com?owner=acme&repo=payments-api",
        "extra": {"replicas": 3, "tier": "gold"},
    },
    "steps": {},
    "user": {"ref": "user:default/ada", "entity": None},
    "context": {"task": {"id": "00000000-0000-0000-0000-000000000000"}},
    "secrets": {"TOKEN": "t"},
}


def bench_renders(step_input: dict[str, Any], seconds: float) -> tuple[float, int]:
    renderer = Renderer()
    expected = renderer.render(step_input, CONTEXT)  # compiles once, like a worker's first task
    assert expected["values"]["name"] == "payments-api"
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            renderer.render(step_input, CONTEXT)
        count += 200
    return count / (time.perf_counter() - started), count


SPEC: dict[str, Any] = {
    "steps": [
        {
            "id": "log",
            "name": "Log",
            "action": "debug:log",
            "input": {"message": "Hello ${{ parameters.name }}"},
        }
    ],
    "output": {"text": [{"title": "Greeting", "content": "Hello ${{ parameters.name }}"}]},
    "parameters": {"name": "world"},
    "user": {},
}


async def bench_runner(tasks: int) -> float:
    runner = WorkflowRunner(ActionRegistry.builtin(), Renderer(), work_dir=Path(tempfile.mkdtemp()))
    await runner(LocalTask(spec=SPEC), MemoryTaskIO())  # warm the compile cache
    started = time.perf_counter()
    batch = 500
    for start in range(0, tasks, batch):
        size = min(batch, tasks - start)
        await asyncio.gather(*(runner(LocalTask(spec=SPEC), MemoryTaskIO()) for _ in range(size)))
    return tasks / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 5.0
    for label, step_input, expressions in (
        ("typical", TYPICAL_INPUT, 2),
        ("large", STEP_INPUT, 12),
    ):
        log(f"rendering the {label} step input for", seconds, "s")
        rate, count = bench_renders(step_input, seconds)
        emit(
            "render",
            "falsework",
            f"{label}_step_input_renders_per_s",
            round(rate),
            renders=count,
            expressions=expressions,
            target=20_000,
            **machine(),
        )
    tasks = 2_000 if args.quick else 10_000
    log("runner overhead over", tasks, "one-step tasks (in-memory TaskIO)")
    per_s = asyncio.run(bench_runner(tasks))
    emit(
        "render",
        "falsework",
        "runner_tasks_per_s_in_memory",
        round(per_s),
        tasks=tasks,
        step="debug:log",
        **machine(),
    )


if __name__ == "__main__":
    main()
