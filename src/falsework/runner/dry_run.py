"""Dry runs: run a template against its own files without side effects.

What ``POST /v2/dry-run`` does: the template folder arrives as a list of
``{path, base64Content}``; it is written to a temp folder (so ``./skeleton``
resolves), the steps run with ``is_dry_run`` set, actions that cannot dry-run
are skipped with outputs faked from their output schema, and the result is the
log, the workspace's files, the output and the steps. A failing step is
reported in the log and the steps, never raised.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import stat
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falsework.confine import Tree, relative
from falsework.errors import (
    ActionError,
    InputError,
    TaskFailedError,
    TooLargeError,
    UnsafePathError,
)
from falsework.runner.memory import LocalTask, MemoryTaskIO
from falsework.runner.redaction import Redactor
from falsework.types import JSONObject

if TYPE_CHECKING:
    from falsework.actions.rehearsal import Rehearsal
    from falsework.runner.workflow import WorkflowRunner


async def dry_run(
    runner: WorkflowRunner,
    template: Any,
    values: Mapping[str, Any],
    secrets: Mapping[str, str] | None = None,
    directory_contents: Sequence[Mapping[str, Any]] | None = None,
    *,
    user: Mapping[str, Any] | None = None,
    template_dir: Path | None = None,
    rehearsal: Rehearsal | None = None,
) -> JSONObject:
    """``template_dir``: the template's own folder (a catalog template's), used
    as it is; without it the folder is ``directory_contents``, written to a temp
    folder. With a ``rehearsal`` (``falsework.actions.rehearsal``) the run is
    deterministic (its seed's task id, its user) and side-effecting steps are
    recorded: the result's ``recorded`` lists them."""
    doc = _document(template)
    spec_in = doc.get("spec") or {}
    metadata = doc.get("metadata") or {}
    root = Path(tempfile.mkdtemp(prefix="falsework-dry-run-"))
    # a template body with its files, as Backstage's dry run takes (a rehearsal
    # names its template alike wherever it runs)
    uploaded = template_dir is None and rehearsal is None
    try:
        workspace = root / "workspace"
        if template_dir is None:
            template_dir = root / "template"
            await asyncio.to_thread(write_files, template_dir, directory_contents or [])
        workspace.mkdir()
        # A template body (Backstage's dry run) is "template:default/dry-run" there: what
        # catalog:write's source-template annotation shows; a catalog template, its ref.
        namespace, name = metadata.get("namespace", "default"), metadata.get("name", "dry-run")
        ref = "template:default/dry-run" if uploaded else f"template:{namespace}/{name}"
        spec: JSONObject = {
            "apiVersion": doc.get("apiVersion", "scaffolder.backstage.io/v1beta3"),
            "steps": spec_in.get("steps") or [],
            "output": spec_in.get("output") or {},
            "parameters": dict(values),
            "user": dict(rehearsal.user if rehearsal is not None else user or {}),
            "templateInfo": {
                "entityRef": ref,
                "baseUrl": template_dir.as_uri() + "/",
                "entity": {"metadata": metadata},
            },
        }
        task_id = rehearsal.task_id if rehearsal is not None else str(uuid.uuid4())
        task = LocalTask(spec=spec, secrets=dict(secrets or {}), id=task_id)
        io = MemoryTaskIO()
        output: JSONObject = {}
        error: JSONObject | None = None
        limits = runner.limits
        if rehearsal is not None:
            rehearsal.max_files = limits.dry_run_max_files
            rehearsal.max_bytes = limits.dry_run_max_bytes
        try:
            output = await runner.run(
                task, io, workspace=workspace, dry_run=True, rehearsal=rehearsal
            )
        except TaskFailedError as exc:
            error = {"name": exc.name, "message": exc.message}
        files = await asyncio.to_thread(
            read_files,
            workspace,
            max_files=limits.dry_run_max_files,
            max_bytes=limits.dry_run_max_bytes,
        )
        steps = []
        for index, step in enumerate(spec["steps"]):
            step_id = str(step.get("id") or f"step-{index + 1}")
            item = {**step, "id": step_id, "name": step.get("name") or step.get("action")}
            state = io.steps.get(step_id, {})
            item["status"] = state.get("status", "skipped")
            if rehearsal is not None and "error" in state:
                item["error"] = state["error"]  # which step failed, and why
            steps.append(item)
        result: JSONObject = {
            "log": [{"body": body} for _, body in io.events],
            "directoryContents": files,
            "output": output,
            "steps": steps,
        }
        if error is not None:
            result["error"] = error
        if rehearsal is not None:
            redactor = Redactor(task.secrets)
            result["recorded"] = [
                {
                    **redactor.deep({k: v for k, v in call.items() if k != "files"}),
                    **({"files": call["files"]} if "files" in call else {}),
                }
                for call in rehearsal.calls
            ]
        return result
    finally:
        await asyncio.to_thread(shutil.rmtree, root, True)


def _document(template: Any) -> Mapping[str, Any]:
    raw = getattr(template, "raw", template)
    if not isinstance(raw, Mapping):
        raise TypeError("template must be a Template or its YAML document as a mapping")
    return raw


def write_files(root: Path, contents: Sequence[Mapping[str, Any]]) -> None:
    """``[{path, base64Content, executable?}]`` written under ``root`` (a path
    leaving it raises ``UnsafePathError``; nothing is written through a link)."""
    with Tree(root, where="the template folder", create=True) as tree:
        for item in contents:
            path = relative(str(item["path"]), "the template folder")
            data = base64.b64decode(item.get("base64Content") or "")
            try:
                tree.write_bytes(path, data, mode=0o755 if item.get("executable") else None)
            except UnsafePathError:
                raise
            except ActionError as exc:
                # The upload cannot be written (a name too long, a file where a
                # folder is needed): the request's fault, said as such.
                cause = exc.__cause__
                reason = cause.strerror if isinstance(cause, OSError) else None
                raise InputError(
                    f"directoryContents: {path[:80]!r} could not be written: "
                    f"{reason or exc.message}"
                ) from exc


def read_files(
    root: Path,
    *,
    skip_dirs: frozenset[str] = frozenset(),
    max_files: int | None = None,
    max_bytes: int | None = None,
) -> list[JSONObject]:
    """Every regular file under ``root`` as ``{path, base64Content, executable}``,
    in path order; links (never followed, never read) and entries named in
    ``skip_dirs`` are left out. ``TooLargeError`` past ``max_files`` files or
    ``max_bytes`` bytes in all (counted before a file is read)."""
    found: list[JSONObject] = []
    total = 0
    with Tree(root) as tree:
        for entry in tree.walk(skip=skip_dirs):
            if entry.kind != "file":
                continue
            total += entry.stat.st_size
            if max_files is not None and len(found) >= max_files:
                raise TooLargeError(
                    f"the dry run's workspace has more than {max_files:,} files, the most a "
                    "dry run may return (dry_run_max_files)"
                )
            if max_bytes is not None and total > max_bytes:
                raise TooLargeError(
                    f"the dry run's workspace files hold more than {max_bytes:,} bytes, the "
                    "most a dry run may return (dry_run_max_bytes)"
                )
            found.append(
                {
                    "path": entry.path,
                    "base64Content": base64.b64encode(tree.read_bytes(entry.path)).decode("ascii"),
                    "executable": bool(entry.stat.st_mode & stat.S_IXUSR),
                }
            )
    found.sort(key=lambda f: str(f["path"]))
    return found
