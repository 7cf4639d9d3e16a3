"""`falsework tasks`: a client of a running server's scaffolder API.

Exit codes: 0 success (for ``logs``: the task completed), 1 the task failed,
3 the task was cancelled, 4 the server refused the request or is unreachable.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from falsework.cli import output

DEFAULT_SERVER = "http://127.0.0.1:7007"
EXIT_FAILED, EXIT_CANCELLED, EXIT_ERROR = 1, 3, 4
# How long a follower keeps reconnecting to a stream that broke (a node restarting
# behind a load balancer, a rolling deploy) before it gives up.
RECONNECT_WINDOW_S = 60.0
STATUS_EXIT = {"completed": 0, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
STATUS_STYLE = {
    "open": "cyan",
    "processing": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}

app = typer.Typer(help="List, follow, cancel and retry tasks on a server.", no_args_is_help=True)
console = output.console()
errors = output.console(stderr=True)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
SHORT_ID = 8  # as `tasks ls` shows an id; any unique prefix works

Server = Annotated[
    str,
    typer.Option("--server", envvar="FALSEWORK_SERVER", help="Base URL of `falsework serve`."),
]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="FALSEWORK_TOKEN", help="Bearer token.", show_default=False),
]
TaskId = Annotated[
    str, typer.Argument(metavar="ID", help="A task id, or the start of one (as `tasks ls` shows).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]


class Client:
    """The few API calls the commands make, with errors turned into exit codes."""

    def __init__(self, server: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=server.rstrip("/") + "/api/scaffolder",
            headers=headers,
            timeout=httpx.Timeout(30.0, read=60.0),
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            _fail(f"cannot reach {self.http.base_url}: {exc}")
        if response.status_code >= 400:
            _fail(_error_message(response))
        return response.json()

    def resolve(self, task_id: str) -> str:
        """The full id of ``task_id``, which may be the start of one (``tasks ls``
        shows 8 characters): looked up among the newest 1000 tasks the caller sees."""
        task_id = task_id.strip()
        if UUID.match(task_id):
            return task_id
        if len(task_id) < 4:
            _fail(f"{task_id!r}: give a task id or at least its first 4 characters")
        params = {"limit": 1000, "order": "desc:created_at"}
        body = self.call("GET", "/v2/tasks", params=params)
        found = [t["id"] for t in body["tasks"] if str(t["id"]).startswith(task_id.lower())]
        if not found:
            _fail(f"no task id starts with {task_id!r} (see `falsework tasks ls`)")
        if len(found) > 1:
            _fail(f"{task_id!r} is the start of {len(found)} task ids: give more of it")
        return str(found[0])

    def status(self, task_id: str) -> str | None:
        """The task's status, or None when the server cannot answer right now."""
        try:
            response = self.http.get(f"/v2/tasks/{task_id}")
        except httpx.HTTPError:
            return None
        return str(response.json()["status"]) if response.status_code == 200 else None

    def stream(self, task_id: str, after: int | None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, event JSON) for each SSE message until the server ends the stream."""
        params = {"after": str(after)} if after is not None else {}
        timeout = httpx.Timeout(30.0, read=None)
        try:
            with self.http.stream(
                "GET", f"/v2/tasks/{task_id}/eventstream", params=params, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    _fail(_error_message(response))
                kind, data = "message", list[str]()
                for line in response.iter_lines():
                    if not line:
                        if data:
                            yield kind, json.loads("\n".join(data))
                        kind, data = "message", list[str]()
                    elif line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
        except httpx.HTTPError as exc:
            raise StreamBroken(str(exc)) from exc


class StreamBroken(Exception):
    """The event stream ended abnormally; resume with the last event id."""


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return f"{err.get('name', 'Error')} ({response.status_code}): {err.get('message', '')}"
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(e.get("stack", e)) for e in body["errors"])
    return f"HTTP {response.status_code}: {body}"


def _fail(message: str) -> Any:
    errors.print(Text("error: ", style="red") + Text(message))
    raise typer.Exit(EXIT_ERROR)


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _template(task: dict[str, Any]) -> str:
    info = task.get("spec", {}).get("templateInfo", {}) or {}
    return str(info.get("entityRef", ""))


def _short_ref(ref: str) -> str:
    """``template:default/wait`` → ``wait``; other namespaces are kept (``ns/name``)."""
    _, _, rest = ref.rpartition(":")
    return rest.removeprefix("default/")


def _age(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return ""
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


@app.command("ls")
def ls(
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    status: Annotated[str | None, typer.Option(help="Only tasks with this status.")] = None,
    created_by: Annotated[str | None, typer.Option(help="Only tasks of this user ref.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: AsJson = False,
) -> None:
    """The newest tasks: short id (any unique start of an id works in the other
    commands), status, template, who created it and when."""
    params: dict[str, Any] = {"limit": limit, "order": "desc:created_at"}
    if status:
        params["status"] = status
    if created_by:
        params["createdBy"] = created_by
    body = Client(server, token).call("GET", "/v2/tasks", params=params)
    if as_json:
        output.print_json(body)
        return
    terminal = console.is_terminal
    table = Table(box=None, pad_edge=False, header_style="bold" if terminal else "")
    # On a terminal the long columns give way (with …) so a row fits 80 columns;
    # in a pipe nothing is cut.
    cut: Literal["ellipsis", "fold"] = "ellipsis" if terminal else "fold"
    table.add_column("ID", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("TEMPLATE", no_wrap=True, overflow=cut, max_width=28 if terminal else None)
    table.add_column("CREATED BY", no_wrap=True, overflow=cut, max_width=20 if terminal else None)
    table.add_column("CREATED", no_wrap=True)
    now = datetime.now(UTC)
    for task in body["tasks"]:
        by = str(task.get("createdBy") or "")
        table.add_row(
            str(task["id"])[:SHORT_ID],
            _status(task["status"]),
            _short_ref(_template(task)),
            by.removeprefix("user:default/"),
            _age(task.get("createdAt"), now),
        )
    output.print_table(console, table)
    if terminal:
        shown, total = len(body["tasks"]), body["totalTasks"]
        console.print(Text(f"{shown} of {total} tasks", style="dim"))


@app.command("show")
def show(
    task_id: TaskId,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {task, steps, error} as JSON.")
    ] = False,
) -> None:
    """One task: its template, status and the state of each step."""
    client = Client(server, token)
    task_id = client.resolve(task_id)
    task = client.call("GET", f"/v2/tasks/{task_id}")
    events = client.call("GET", f"/v2/tasks/{task_id}/events")
    states = _step_states(events)
    steps = [
        {
            "id": str(step.get("id", "")),
            "name": str(step.get("name", "")),
            "action": str(step.get("action", "")),
            "status": states.get(step.get("id"), "pending"),
        }
        for step in task.get("spec", {}).get("steps", [])
    ]
    final = _final(events)
    error = final[1] if final is not None and final[1] else None
    if as_json:
        output.print_json({"task": task, "steps": steps, "error": error})
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("task", str(task["id"]))
    table.add_row("template", _template(task))
    table.add_row("status", _status(task["status"]))
    for key in ("createdBy", "createdAt", "lastHeartbeatAt", "completedAt"):
        if task.get(key):
            table.add_row(key, str(task[key]))
    output.print_table(console, table)
    console.print()
    rows = Table(box=None, pad_edge=False, header_style="bold" if console.is_terminal else "")
    for column in ("STEP", "NAME", "ACTION", "STATUS"):
        rows.add_column(column)
    for step in steps:
        rows.add_row(step["id"], step["name"], step["action"], _status(step["status"]))
    output.print_table(console, rows)
    if error:
        console.print(Text(error, style="red"))


def _step_states(events: list[dict[str, Any]]) -> dict[str, str]:
    states: dict[str, str] = {}
    for event in events:
        body = event.get("body", {})
        if body.get("stepId") and body.get("status"):
            states[body["stepId"]] = body["status"]
    return states


def _final(events: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(status, error message) of the task's final event, if it has one."""
    for event in reversed(events):
        if event.get("type") in ("completion", "cancelled"):
            return _outcome(event)
    return None


def _outcome(event: dict[str, Any]) -> tuple[str, str]:
    body = event.get("body", {})
    if event.get("type") == "cancelled":
        return "cancelled", ""
    message = str(body.get("message", ""))
    status = message.rsplit(":", 1)[-1].strip() or "completed"
    error = body.get("error") or {}
    return status, f"{error.get('name', '')}: {error.get('message', '')}" if error else ""


@app.command("logs")
def logs(
    task_id: TaskId,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream until it ends.")] = False,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
) -> None:
    """A task's log; with -f, follow it live (on a terminal, with a progress line
    per step; in a pipe or file, plain lines).

    The exit code is the task's final status (0 completed, 1 failed, 3 cancelled).
    """
    client = Client(server, token)
    task_id = client.resolve(task_id)
    task = client.call("GET", f"/v2/tasks/{task_id}")
    if not follow:
        events = client.call("GET", f"/v2/tasks/{task_id}/events")
        for event in events:
            _print_event(console, event)
        final = _final(events)
        status = final[0] if final else task["status"]
        raise typer.Exit(STATUS_EXIT.get(status, 0))
    status = _follow(client, task)
    raise typer.Exit(STATUS_EXIT.get(status, EXIT_ERROR))


def _follow(client: Client, task: dict[str, Any]) -> str:
    names = {s.get("id"): s.get("name") or s.get("id") for s in task["spec"].get("steps", [])}
    rows: dict[str, TaskID] = {}
    status = task["status"]
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        # a pipe or a file gets the log lines only, not the progress display
        disable=not console.is_terminal,
    ) as progress:
        for step_id, name in names.items():
            rows[step_id] = progress.add_task(
                _markup(str(name)), total=1, state="pending", start=False
            )
        last: int | None = None
        failures = 0
        broken_since: float | None = None
        finished = False
        while not finished:
            try:
                for kind, event in client.stream(task["id"], last):
                    failures, broken_since = 0, None
                    last = int(event.get("id", last or 0))
                    _print_event(progress.console, event)
                    _show_step(progress, rows, event)
                    if kind in ("completion", "cancelled"):
                        status = _outcome(event)[0]
                        finished = True
                        for row in rows.values():
                            progress.stop_task(row)
                if not finished:
                    # The server ended the stream early (it is shutting down).
                    if client.status(task["id"]) in STATUS_EXIT:
                        break
                    raise StreamBroken("the server closed the stream")
            except StreamBroken as exc:
                # A node restarting behind a load balancer: resume where we were.
                failures += 1
                now = time.monotonic()
                broken_since = now if broken_since is None else broken_since
                if now - broken_since > RECONNECT_WINDOW_S:
                    _fail(f"the event stream broke: {exc}")
                time.sleep(min(0.25 * 2**failures, 3.0))
    if status not in STATUS_EXIT:
        # The stream ended without a final event (server shut down): ask once.
        status = client.call("GET", f"/v2/tasks/{task['id']}")["status"]
    console.print(Text(f"task {task['id']}: ") + _status(status))
    return str(status)


def _show_step(progress: Progress, rows: dict[str, TaskID], event: dict[str, Any]) -> None:
    body = event.get("body", {})
    step, state = body.get("stepId"), body.get("status")
    if step not in rows or not state:
        return
    row = rows[step]
    if state == "processing":
        progress.start_task(row)
    done = state in ("completed", "failed", "skipped", "cancelled")
    style = STATUS_STYLE.get(state, "")
    progress.update(
        row, state=f"[{style}]{state}[/]" if style else state, completed=1 if done else 0
    )


def _markup(text: str) -> str:
    """``text`` for a place that reads Rich markup (a progress column)."""
    return output.escape(text)


def _print_event(out: Console, event: dict[str, Any]) -> None:
    body = event.get("body", {})
    step = body.get("stepId")
    line = Text(f"{event.get('createdAt', '')} ", style="dim")
    if step:
        line += Text(f"{step} ", style="bold")
    # the message may carry ANSI colours of its own (a tool's output): kept on a
    # terminal, dropped elsewhere (Rich prints no codes to a pipe)
    line += Text.from_ansi(str(body.get("message", "")))
    out.print(line)


@app.command("cancel")
def cancel(
    task_id: TaskId,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
) -> None:
    """Cancel an open or running task."""
    client = Client(server, token)
    task_id = client.resolve(task_id)
    body = client.call("POST", f"/v2/tasks/{task_id}/cancel")
    console.print(Text(f"task {task_id}: ") + _status(body["status"]))


@app.command("retry")
def retry(
    task_id: TaskId,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
) -> None:
    """Re-open a failed or cancelled task from its failed step."""
    client = Client(server, token)
    task_id = client.resolve(task_id)
    body = client.call("POST", f"/v2/tasks/{task_id}/retry")
    console.print(Text(f"task {body['id']}: re-opened"))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="tasks")
