"""Run one case: its answers checked page by page, then a rehearsal of the
template (``falsework.actions.rehearsal``) here or through a server's
``POST /v2/dry-run``; the result as :class:`Rendered`.

Both ways run the same code on the same inputs: the template folder without
its ``tests/`` (and ``.git``), the answers, the secrets, the case's seed, user
and canned HTTP answers; folders in messages are shown as ``<template>`` and
``.`` (the workspace) as the server shows them. So the same case gives the same
bytes locally and on any server running this version.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from falsework.actions.rehearsal import Rehearsal
from falsework.confine import Tree
from falsework.errors import FalseworkError
from falsework.runner.dry_run import read_files, write_files
from falsework.runner.isolation import hide_paths
from falsework.templates import ParameterValidationError, Template, validate_values
from falsework.testing.cases import TESTS_DIR, Case
from falsework.types import JSONObject

Status = Literal["completed", "failed", "invalid"]


class UsageError(FalseworkError):
    """The run cannot go on as asked (a server that refuses the token...)."""


@dataclass(frozen=True)
class File:
    """One file of a result: its bytes and whether it is executable."""

    data: bytes
    executable: bool = False

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclass
class Invalid:
    """Answers refused: on which page (1-based; None when only the whole set of
    values is refused) and the messages, as the form and the API give them."""

    page: int | None
    title: str
    messages: list[str]


@dataclass
class Rendered:
    """What a template made of one case's answers."""

    status: Status
    files: dict[str, File] = field(default_factory=dict)  # the tree a push would push
    workspace: dict[str, File] = field(default_factory=dict)  # the workspace at the end
    output: JSONObject = field(default_factory=dict)
    steps: list[JSONObject] = field(default_factory=list)
    events: list[JSONObject] = field(default_factory=list)  # the log's bodies
    calls: list[JSONObject] = field(default_factory=list)  # recorded calls, without files
    error: JSONObject | None = None  # {name, message, step}
    invalid: Invalid | None = None
    update: JSONObject | None = None  # an upgrade case's: {from, conflicts, answers}


class Rehearser(Protocol):
    """Where rehearsals run: here (:class:`LocalRehearser`) or on a server."""

    async def rehearse(self, case: Case, values: dict[str, Any]) -> JSONObject:
        """The dry-run result of ``case`` with ``values`` (already checked)."""
        ...

    async def aclose(self) -> None: ...


# -------------------------------------------------------------- the answers


def check_answers(case: Case) -> tuple[dict[str, Any] | None, Invalid | None]:
    """The values (defaults filled in) or why they are refused: the first page
    whose answers the template's check refuses, as the form stops there."""
    template = case.template
    try:
        return validate_values(template, case.values()), None
    except ParameterValidationError as exc:
        everything = exc.errors
    given: dict[str, Any] = {}
    for index, page in enumerate(template.parameters):
        if case.paged:
            given.update(case.pages[index] if index < len(case.pages) else {})
        else:
            given = case.values()
        try:
            validate_values(template, given)
            continue
        except ParameterValidationError as exc:
            found = [e for e in exc.errors if _on_page(e, page)]
        if found:
            title = str(page.get("title") or f"page {index + 1}")
            return None, Invalid(index + 1, title, [str(e["stack"]) for e in found])
    return None, Invalid(None, "", [str(e["stack"]) for e in everything])


def _on_page(error: Mapping[str, Any], page: Mapping[str, Any]) -> bool:
    """Whether a validation error is about a field of ``page``."""
    if error.get("schema") == page:
        return True  # the page's own keywords (required, dependencies)
    path = [p for p in error.get("path") or [] if not isinstance(p, int)]
    name = path[0] if path else error.get("argument") if error.get("name") == "required" else None
    props = page.get("properties")
    if not isinstance(name, str):
        return False
    if isinstance(props, Mapping) and name in props:
        return True
    return json.dumps(name) in json.dumps(page, default=str)  # added by a branch


# -------------------------------------------------------------- the runs


def template_files(template: Template) -> list[JSONObject]:
    """The template's folder as ``directoryContents``, without its ``tests/``
    and ``.git`` (the cases and their snapshots are not the template's)."""
    root = template.directory
    found: list[JSONObject] = []
    with Tree(root, where="the template folder") as tree:
        for entry in tree.walk(recursive=False):
            if entry.path in (TESTS_DIR, ".git"):
                continue
            if entry.kind == "file":
                data = tree.read_bytes(entry.path)
                executable = bool(entry.stat.st_mode & 0o100)
                found.append(
                    {
                        "path": entry.path,
                        "base64Content": base64.b64encode(data).decode(),
                        "executable": executable,
                    }
                )
            elif entry.kind == "dir":
                for item in read_files(root / entry.path, skip_dirs=frozenset({".git"})):
                    found.append({**item, "path": f"{entry.path}/{item['path']}"})
    found.sort(key=lambda f: str(f["path"]))
    return found


def rehearsal_of(case: Case) -> Rehearsal:
    return Rehearsal(seed=case.seed, user=case.user, http=list(case.http))


class LocalRehearser:
    """Rehearsals in this process, through the very runner a server's dry-run
    child uses (its settings: the configuration of the current folder)."""

    def __init__(self, settings: Any = None, *, cache: bool = True) -> None:
        """``cache``: copy each template's folder once (a suite), not before each
        rehearsal (a test that may change the template between two)."""
        from falsework.config import load_settings
        from falsework.wiring import workflow_runner

        # A server's action policies, not falsework run's: a template reads only
        # its own folder, as it will once deployed.
        self.runner = workflow_runner(settings or load_settings())
        self._root = Path(tempfile.mkdtemp(prefix="falsework-test-"))
        self._staged: dict[Path, Path] = {}
        self._cache = cache
        self._count = 0

    def _stage(self, template: Template) -> Path:
        staged = self._staged.get(template.path) if self._cache else None
        if staged is None:
            self._count += 1
            staged = self._root / str(self._count)
            write_files(staged, template_files(template))
            self._staged[template.path] = staged
        return staged

    async def rehearse(self, case: Case, values: dict[str, Any]) -> JSONObject:
        staged = await asyncio.to_thread(self._stage, case.template)
        result = await self.runner.dry_run(
            case.template.raw,
            values,
            case.secrets,
            template_dir=staged,
            rehearsal=rehearsal_of(case),
        )
        data = json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode()
        loaded: JSONObject = json.loads(hide_paths(data, str(staged)))
        if not self._cache:
            await asyncio.to_thread(shutil.rmtree, staged, True)
        return loaded

    async def aclose(self) -> None:
        await asyncio.to_thread(shutil.rmtree, self._root, True)


class ServerRehearser:
    """Rehearsals through a server's ``POST /api/scaffolder/v2/dry-run``: the
    working copy of each template (``template`` + ``directoryContents``, which
    needs the templates:author role), or with ``by_ref`` the server's own copy
    of it (``templateRef``: the right to run it is enough)."""

    def __init__(self, url: str, token: str | None, *, by_ref: bool = False) -> None:
        base = url.rstrip("/")
        if not base.endswith("/api/scaffolder"):
            base += "/api/scaffolder"
        self.url = f"{base}/v2/dry-run"
        self.by_ref = by_ref
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(headers=headers, timeout=300.0)
        self._files: dict[Path, list[JSONObject]] = {}

    async def rehearse(self, case: Case, values: dict[str, Any]) -> JSONObject:
        body: JSONObject = {
            "values": case.values(),
            "secrets": case.secrets,
            "rehearsal": rehearsal_of(case).to_json(),
        }
        if self.by_ref:
            body["templateRef"] = case.template.ref
        else:
            files = self._files.get(case.template.path)
            if files is None:
                files = await asyncio.to_thread(template_files, case.template)
                self._files[case.template.path] = files
            body["template"] = case.template.raw
            body["directoryContents"] = files
        for _ in range(60):
            try:
                response = await self.client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                raise UsageError(f"{self.url}: {exc or type(exc).__name__}") from None
            if response.status_code != 429:
                break
            # the server's per-user limit on dry runs: wait as long as it says
            await asyncio.sleep(float(response.headers.get("retry-after") or 1))
        return self._answer(response, case)

    def _answer(self, response: httpx.Response, case: Case) -> JSONObject:
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code == 200 and isinstance(data, dict):
            return data
        message = _error_message(data) or response.text[:300]
        if response.status_code == 400 and isinstance(data, dict) and "errors" in data:
            raise ParameterValidationError(list(data["errors"]))
        if response.status_code in (401, 403):
            hint = (
                ""
                if self.by_ref
                else " (a template's working copy needs the templates:author role; "
                "--by-ref runs the server's own copy of each template instead)"
            )
            raise UsageError(f"{self.url} answered {response.status_code}: {message}{hint}")
        if response.status_code == 404 and self.by_ref:
            raise FalseworkError(f"the server has no template {case.template.ref}: {message}")
        raise FalseworkError(f"{self.url} answered {response.status_code}: {message}")

    async def aclose(self) -> None:
        await self.client.aclose()


def _error_message(data: Any) -> str:
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return ""


# -------------------------------------------------------------- the result


async def rehearse(case: Case, rehearser: Rehearser) -> Rendered:
    """Check the case's answers, then rehearse it."""
    values, invalid = await asyncio.to_thread(check_answers, case)
    if invalid is not None or values is None:
        return Rendered(status="invalid", invalid=invalid)
    try:
        result = await rehearser.rehearse(case, values)
    except ParameterValidationError as exc:  # the server's check (a --by-ref template)
        return Rendered(
            status="invalid", invalid=Invalid(None, "", [str(e.get("stack")) for e in exc.errors])
        )
    return rendered(result)


def _files(items: list[JSONObject]) -> dict[str, File]:
    return {
        str(f["path"]): File(base64.b64decode(f["base64Content"]), bool(f.get("executable")))
        for f in items
    }


def rendered(result: JSONObject) -> Rendered:
    """A dry-run result (a rehearsal's) as :class:`Rendered`: the tree is what
    the one push would push, each push's under its step id when there are
    several, the workspace when nothing is pushed."""
    workspace = _files(result.get("directoryContents") or [])
    recorded: list[JSONObject] = list(result.get("recorded") or [])
    pushes = [c for c in recorded if "files" in c]
    if not pushes:
        tree = workspace
    elif len(pushes) == 1:
        tree = _files(pushes[0]["files"])
    else:
        tree = {
            f"{call['step']}/{path}": file
            for call in pushes
            for path, file in _files(call["files"]).items()
        }
    calls = [
        {
            **{k: v for k, v in c.items() if k != "files"},
            **({"files": len(c["files"])} if "files" in c else {}),
        }
        for c in recorded
    ]
    steps: list[JSONObject] = []
    failed: str | None = None
    for step in result.get("steps") or []:
        item: JSONObject = {
            "id": step.get("id"),
            "name": step.get("name"),
            "action": step.get("action"),
            "status": step.get("status"),
        }
        if "error" in step:
            item["error"] = step["error"]
            failed = failed or str(step.get("id"))
        mine = [
            {k: v for k, v in c.items() if k not in ("step", "action")}
            for c in calls
            if str(c["step"]).split("[", 1)[0] == step.get("id")
        ]
        if mine:
            item["calls"] = mine
        steps.append(item)
    error = result.get("error")
    return Rendered(
        status="failed" if error else "completed",
        files=tree,
        workspace=workspace,
        output=result.get("output") or {},
        steps=steps,
        events=[e.get("body") or {} for e in result.get("log") or []],
        calls=calls,
        error={**error, "step": failed} if error else None,
    )
