"""`falsework update`, `falsework templates check-update` and `falsework templates
diff`: template updates on a clone, no server needed (docs/updates.md)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.text import Text

from falsework.actions.git import GitPolicy
from falsework.cli.output import console as new_console
from falsework.config import load_settings
from falsework.errors import FalseworkError
from falsework.templates.syntax import read_value
from falsework.templates.values import MAX_VALUE_DEPTH
from falsework.updates import (
    PRISTINE_BRANCH,
    STATE_PATH,
    MissingAnswersError,
    ScaffoldState,
    StateError,
    apply_to_worktree,
    plan_update,
)
from falsework.updates.render import for_updates
from falsework.updates.update import open_clone, read_state, status

Repo = Annotated[Path, typer.Argument(help="A clone of a repository made with scaffold recording.")]


def register(app: typer.Typer) -> None:
    app.command("update")(update)


def register_templates(group: typer.Typer) -> None:
    """``templates check-update`` and ``templates diff`` (cli/templates.py adds them)."""
    group.command("check-update")(check_update)
    group.command("diff")(diff)


def _overrides(sets: list[str], answers: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--set {item!r}: expected key=value")
        key = key.strip()
        # as typed for a string answer ("007" stays "007"), else read as YAML, its
        # nesting bounded as the values' is (10,000 '[' are an error, not a RecursionError)
        if isinstance(answers.get(key), str):
            values[key] = raw
            continue
        try:
            values[key] = read_value(raw or "''", f"--set {key}", max_depth=MAX_VALUE_DEPTH)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return values


def update(
    repo: Repo = Path("."),
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            help="With --all: update every repository a server recorded for this template "
            "ref (one update task each, as pull requests).",
        ),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every recorded repository of --template.")
    ] = False,
    server: Annotated[
        str | None,
        typer.Option("--server", envvar="FALSEWORK_SERVER", help="Base URL of `falsework serve`."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="FALSEWORK_TOKEN", help="Bearer token.", show_default=False),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="The version (tag, branch or commit); default the newest tag."),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value: change or add an answer; repeatable."),
    ] = None,
) -> None:
    """Update a clone to a newer version of its template, merged 3-way.

    The new version is rendered with the recorded answers and merged, 3-way, into the working tree
    (conflicts as markers and as unmerged paths in the index). The working tree
    must have no uncommitted changes. Exit 0 when merged cleanly or already up
    to date, 1 with conflicts to resolve, 2 when the update cannot be made."""
    err = new_console(stderr=True)
    out = new_console()
    if template or everything:
        if not (template and everything and server):
            err.print("Error: a fleet update takes --template T --all --server URL")
            raise typer.Exit(2)
        raise typer.Exit(_fleet(server, token, template, to, sets or [], out, err))
    try:
        code = asyncio.run(_update(repo, to, sets or [], out))
    except MissingAnswersError as exc:
        err.print(Text("Error: ", style="red") + Text(str(exc)))
        raise typer.Exit(2) from None
    except FalseworkError as exc:
        err.print(Text("Error: ", style="red") + Text(str(exc)))
        raise typer.Exit(2) from None
    raise typer.Exit(code)


async def _update(folder: Path, to: str | None, sets: list[str], out: Any) -> int:
    from falsework.wiring import workflow_runner

    policy = GitPolicy.local()
    repo = await open_clone(folder, policy)
    head = await repo.rev("HEAD")
    if head is None:
        raise FalseworkError(f"{folder}: the repository has no commit")
    state = await read_state(repo, head)
    overrides = _overrides(sets, state.answers)
    runner = for_updates(workflow_runner(load_settings()))
    tip = await repo.rev(f"refs/remotes/origin/{PRISTINE_BRANCH}") or await repo.rev(
        f"refs/heads/{PRISTINE_BRANCH}"
    )
    plan = await plan_update(repo, head, runner, to=to, overrides=overrides, pristine_tip=tip)
    if plan.up_to_date:
        out.print(f"Already at {state.template.version} ({plan.version.name} is the newest).")
        return 0
    await apply_to_worktree(repo, plan)
    out.print(plan.title() + ".")
    if plan.conflicts:
        out.print(Text(f"{len(plan.conflicts)} conflict(s) to resolve:", style="yellow"))
        for path in plan.conflicts:
            out.print(f"  {path}")
    else:
        out.print("Merged cleanly; review with `git diff --cached`.")
    out.print(
        f"Commit it, and push branch {PRISTINE_BRANCH} with it (the next update's base): "
        f"git push origin {PRISTINE_BRANCH}"
    )
    return 1 if plan.conflicts else 0


def _fleet(
    server: str,
    token: str | None,
    template: str,
    to: str | None,
    sets: list[str],
    out: Any,
    err: Any,
) -> int:
    """Start an update task for every repository the server recorded for ``template``."""
    body: dict[str, Any] = {"template": template, "values": _overrides(sets, {})}
    if to:
        body["to"] = to
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = server.rstrip("/") + "/api/falsework/v1/scaffolds/updates"
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=120)
    except httpx.HTTPError as exc:
        err.print(Text("Error: ", style="red") + Text(f"cannot reach {server}: {exc}"))
        return 2
    if response.status_code != 201:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        err.print(Text("Error: ", style="red") + Text(f"{response.status_code}: {message}"))
        if response.status_code == 422:
            _print_needed(response.json().get("needed") or [], err)
        return 2
    tasks = response.json()["tasks"]
    out.print(f"Started {len(tasks)} update task(s) of {template}:")
    for item in tasks:
        out.print(f"  {item['id']}  {item['repository']}")
    out.print("Follow them with `falsework tasks ls` / `falsework tasks logs ID -f`.")
    return 0


def check_update(
    repo: Repo = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Whether a newer version of the clone's template exists: exit 0 when the
    branch has the newest version, 2 when it is behind (for CI), 1 on error."""
    err = new_console(stderr=True)
    out = new_console()
    try:
        found = asyncio.run(_status(repo))
    except FalseworkError as exc:
        err.print(Text("Error: ", style="red") + Text(str(exc)))
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(found.to_json(), indent=2) + "\n")
    elif found.behind:
        out.print(
            f"{found.state.template.ref}: {found.state.template.version} → {found.latest.name} "
            "available (falsework update)"
        )
    else:
        out.print(f"{found.state.template.ref}: {found.state.template.version} is the newest")
    raise typer.Exit(2 if found.behind else 0)


async def _status(folder: Path) -> Any:
    repo = await open_clone(folder, GitPolicy.local())
    head = await repo.rev("HEAD")
    if head is None:
        raise FalseworkError(f"{folder}: the repository has no commit")
    return await status(repo, head)


def diff(
    repo: Repo = Path("."),
    stat: Annotated[bool, typer.Option("--stat", help="Only the files and line counts.")] = False,
) -> None:
    """What the team changed since the template rendered it: the pristine render
    the working tree derives from (its state file says which) against the working
    tree, the state file left out."""
    err = new_console(stderr=True)
    try:
        clone = asyncio.run(open_clone(repo, GitPolicy.local()))
        assert clone.work_tree is not None
        path = clone.work_tree / STATE_PATH
        if not path.is_file():
            raise StateError(f"{path} is missing: not a repository made with scaffold recording")
        state = ScaffoldState.loads(path.read_text(encoding="utf-8"), str(path))
    except FalseworkError as exc:
        err.print(Text("Error: ", style="red") + Text(str(exc)))
        raise typer.Exit(1) from None
    command = ["git", "-C", str(clone.work_tree), "diff", *(["--stat"] if stat else [])]
    command += [state.pristine, "--", ".", f":(exclude){STATE_PATH}"]
    raise typer.Exit(subprocess.run(command, check=False).returncode)


def _print_needed(needed: list[dict[str, Any]], err: Any) -> None:
    """The answers a 422 says the update needs, per repository, and how to give them."""
    names: dict[str, str] = {}
    for item in needed:
        asked = ", ".join(str(p.get("name")) for p in item.get("parameters") or [])
        err.print(f"  {item.get('repository')}: {asked}")
        for p in item.get("parameters") or []:
            names.setdefault(str(p.get("name")), str(p.get("title") or p.get("name")))
    if names:
        sets = " ".join(f"--set {name}=…" for name in names)
        err.print(
            f"Give them with {sets} (" + "; ".join(f"{n}: {t}" for n, t in names.items()) + ")"
        )
