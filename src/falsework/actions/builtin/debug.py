"""``debug:*`` — write to the task log, list the workspace, wait."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from falsework.actions.context import ActionContext
from falsework.actions.contract import ActionInput, action
from falsework.confine import Tree
from falsework.errors import InputError

# ------------------------------------------------------------------ debug:log


class LogInput(ActionInput):
    message: str | None = Field(None, description="Message to output.")
    list_workspace: bool | Literal["with-filenames", "with-contents"] | None = Field(
        None,
        description='List all files in the workspace. If used with "with-contents", also '
        "the file contents are listed.",
    )


@action(
    id="debug:log",
    description="Writes a message into the log and/or lists all files in the workspace.",
    input=LogInput,
    dry_run=True,
    examples=[
        (
            "Write a debug message",
            "steps:\n  - action: debug:log\n    id: write-debug-line\n"
            '    name: Write "Hello Backstage!" log line\n    input:\n'
            "      message: Hello Backstage!\n",
        ),
        (
            "List the workspace directory",
            "steps:\n  - action: debug:log\n    id: write-workspace-directory\n"
            "    name: List the workspace directory\n    input:\n      listWorkspace: true\n",
        ),
        (
            "List the workspace directory with file contents",
            "steps:\n  - action: debug:log\n    id: write-workspace-directory\n"
            "    name: List the workspace directory with file contents\n    input:\n"
            "      listWorkspace: with-contents\n",
        ),
    ],
)
async def debug_log(ctx: ActionContext[LogInput]) -> None:
    # Backstage first logs the whole input as indented JSON; clients rely on the shape.
    ctx.logger.info(_indented(ctx.input.model_dump(by_alias=True, exclude_none=True)))
    if ctx.input.message:
        ctx.logger.info(ctx.input.message)
    mode = ctx.input.list_workspace
    if mode:
        listing = await ctx.in_thread(_listing, ctx.workspace, mode == "with-contents")
        ctx.logger.info(f"Workspace:\n{listing}")


_SCALAR = (str, int, float, bool)
# one encoder for every step (json.dumps with an option builds a new one per call)
_SCALAR_JSON = json.JSONEncoder(ensure_ascii=False).encode


def _indented(value: dict[str, Any]) -> str:
    """``json.dumps(value, indent=2)``, built directly for a flat object (the
    stdlib's indented encoder is pure Python and costs more than the rest of the
    step)."""
    if not value:
        return "{}"
    # non-ASCII as it is, as JSON.stringify writes it
    if not all(isinstance(k, str) and type(v) in _SCALAR for k, v in value.items()):
        return json.dumps(value, indent=2, ensure_ascii=False)

    dump = _SCALAR_JSON
    return "{\n" + ",\n".join(f"  {dump(k)}: {dump(v)}" for k, v in value.items()) + "\n}"


def _listing(workspace: Path, with_contents: bool) -> str:
    """Every file of the workspace, by path; a link is shown with its target and
    never read (one pointing outside the workspace fails the step)."""
    lines: list[str] = []
    with Tree(workspace) as ws:
        entries = sorted((e for e in ws.walk() if e.kind != "dir"), key=lambda e: e.path)
        for entry in entries:
            if entry.kind == "link":
                ws.check_link(entry.path)
                shown = f"{entry.path} -> {ws.readlink(entry.path)}"
                lines.append(f" - {shown} (a symbolic link)" if with_contents else f"  - {shown}")
            elif entry.kind != "file":
                lines.append(f"  - {entry.path} (not a regular file)")
            elif with_contents:
                content = ws.read_bytes(entry.path).decode("utf-8", errors="replace")
                lines.append(f" - {entry.path}:\n\n  {content}")
            else:
                lines.append(f"  - {entry.path}")
    return "\n".join(lines)


# ----------------------------------------------------------------- debug:wait

MAX_WAIT = 600.0


class WaitInput(ActionInput):
    minutes: float | None = Field(None, ge=0, description="Minutes to wait.")
    seconds: float | None = Field(None, ge=0, description="Seconds to wait.")
    milliseconds: float | None = Field(None, ge=0, description="Milliseconds to wait.")


def _wait_seconds(inp: WaitInput) -> float:
    total = (inp.minutes or 0) * 60 + (inp.seconds or 0) + (inp.milliseconds or 0) / 1000
    if total > MAX_WAIT:
        raise InputError(
            f"Waiting duration is longer than the maximum of {MAX_WAIT / 60:g} minutes"
        )
    return total


async def record_debug_wait(ctx: ActionContext[WaitInput]) -> None:
    """In a rehearsal the clock is frozen: the wait is said, not waited."""
    ctx.logger.info(f"Would wait {_wait_seconds(ctx.input):g} seconds")


@action(
    id="debug:wait",
    description="Waits for a certain period of time (at most 10 minutes). Waiting costs "
    "no CPU and holds no thread.",
    input=WaitInput,
    dry_run=True,
    recorder=record_debug_wait,
    examples=[
        (
            "Wait for a short moment (10 ms)",
            "steps:\n  - action: debug:wait\n    id: wait\n    name: Wait\n"
            "    input:\n      seconds: 0.01\n",
        ),
        (
            "Combine units: 6 ms plus 1 ms",
            "steps:\n  - action: debug:wait\n    id: wait\n    name: Wait\n"
            "    input:\n      minutes: 0.0001\n      milliseconds: 1\n",
        ),
    ],
)
async def debug_wait(ctx: ActionContext[WaitInput]) -> None:
    total = _wait_seconds(ctx.input)
    if total <= 0:
        return
    # A future and a timer: the cheapest wait there is (asyncio.sleep would add a
    # coroutine of its own to each waiting task); the runner cancels it on cancel.
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    timer = loop.call_later(total, _wake, done)
    try:
        await done
    finally:
        timer.cancel()


def _wake(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
