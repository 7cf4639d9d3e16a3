"""``fs:*`` — rename, delete and list files in the workspace."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from falsework.actions.context import ActionContext
from falsework.actions.contract import ActionInput, action
from falsework.confine import Entry, Tree, relative
from falsework.errors import ActionError
from falsework.globs import compile_glob, has_magic

# ----------------------------------------------------------------- fs:rename


class RenameItem(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    from_: str = Field(alias="from", description="The file or folder to rename.")
    to: str = Field(description="Its new path.")
    overwrite: bool = Field(False, description="Replace an existing destination.")


class RenameInput(ActionInput):
    files: list[RenameItem] = Field(description="A list of files and directories to rename.")


@action(
    id="fs:rename",
    rebuilds_workspace=True,
    description="Renames files and directories within the workspace.",
    input=RenameInput,
    dry_run=True,
    examples=[
        (
            "Rename files",
            "steps:\n  - action: fs:rename\n    id: rename-files\n    name: Rename files\n"
            "    input:\n      files:\n        - from: file1.txt\n          to: file1-renamed.txt\n"
            "        - from: file2.txt\n          to: file2-renamed.txt\n"
            "          overwrite: true\n",
        )
    ],
)
async def fs_rename(ctx: ActionContext[RenameInput]) -> None:
    pairs: list[tuple[str, str, RenameItem]] = []
    for item in ctx.input.files:
        if not item.from_ or not item.to:
            raise ActionError("Each file needs both a 'from' and a 'to' path")
        pairs.append((relative(item.from_), relative(item.to), item))
    workspace = ctx.workspace
    for source, dest, item in pairs:
        await ctx.in_thread(_rename, workspace, source, dest, item)
        ctx.logger.info(f"Renamed {item.from_} to {item.to}")


def _rename(workspace: Path, source: str, dest: str, item: RenameItem) -> None:
    with Tree(workspace) as ws:
        if ws.lstat(source) is None:
            raise ActionError(f"Cannot rename {item.from_!r}: it does not exist")
        if ws.lstat(dest) is not None:
            if not item.overwrite:
                raise ActionError(f"Cannot rename {item.from_!r}: {item.to!r} already exists")
            ws.remove(dest)
        ws.rename(source, dest)


# ----------------------------------------------------------------- fs:delete


class DeleteInput(ActionInput):
    files: list[str] = Field(
        description="Paths or glob patterns (`**/*.tmp`) of files and folders to delete."
    )


@action(
    id="fs:delete",
    rebuilds_workspace=True,
    description="Deletes files and directories from the workspace.",
    input=DeleteInput,
    dry_run=True,
    examples=[
        (
            "Delete specific files",
            "steps:\n  - action: fs:delete\n    id: delete-files\n    name: Delete files\n"
            "    input:\n      files:\n        - file1.txt\n        - file2.txt\n",
        ),
        (
            "Delete files with a glob pattern",
            "steps:\n  - action: fs:delete\n    id: delete-files\n    name: Delete files\n"
            "    input:\n      files:\n        - '**/*.log'\n",
        ),
    ],
)
async def fs_delete(ctx: ActionContext[DeleteInput]) -> None:
    workspace = ctx.workspace
    for pattern in ctx.input.files:
        relative(pattern)  # refuses `..` and absolute paths before anything is deleted
        removed = await ctx.in_thread(_delete, workspace, pattern)
        for rel in removed:
            ctx.logger.info(f"File {rel} deleted successfully")


def _delete(workspace: Path, pattern: str) -> list[str]:
    with Tree(workspace) as ws:
        if not has_magic(pattern):
            rel = relative(pattern)
            return [rel] if ws.remove(rel) else []
        regex = compile_glob(pattern)
        removed: list[str] = []
        # Folders before files of the same folder, as the listing is taken first.
        entries = sorted(ws.walk(), key=lambda e: (e.path.count("/"), e.kind != "dir", e.path))
        for entry in entries:
            if any(entry.path.startswith(gone + "/") for gone in removed):
                continue  # went with its folder
            if regex.match(entry.path):
                ws.remove(entry.path)
                removed.append(entry.path)
        return removed


# ---------------------------------------------------------------- fs:readdir


class ReaddirInput(ActionInput):
    paths: list[str] = Field(description="Workspace folders to list.")
    recursive: bool = Field(False, description="Also list sub-folders' contents.")


ENTRY_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "path": {"type": "string"},
        "fullPath": {"type": "string"},
    },
}


@action(
    id="fs:readdir",
    description="Reads files and directories from the workspace.",
    input=ReaddirInput,
    output={
        "type": "object",
        "properties": {
            "files": {"type": "array", "items": ENTRY_SCHEMA},
            "folders": {"type": "array", "items": ENTRY_SCHEMA},
        },
    },
    dry_run=True,
    examples=[
        (
            "List the workspace and a sub-folder",
            "steps:\n  - action: fs:readdir\n    id: readdir\n    name: Read folder\n"
            "    input:\n      paths:\n        - ./\n        - ./docs\n      recursive: true\n",
        )
    ],
)
async def fs_readdir(ctx: ActionContext[ReaddirInput]) -> None:
    folders = [relative(p) for p in ctx.input.paths]
    files, dirs = await ctx.in_thread(_readdir, ctx.workspace, folders, ctx.input.recursive)
    ctx.output("files", files)
    ctx.output("folders", dirs)


def _readdir(
    workspace: Path, folders: list[str], recursive: bool
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    root = Path(os.path.realpath(workspace))
    files: list[dict[str, str]] = []
    dirs: list[dict[str, str]] = []

    def entry(item: Entry) -> dict[str, str]:
        return {"name": item.name, "path": item.path, "fullPath": str(root / item.path)}

    with Tree(workspace) as ws:
        for folder in folders:
            if not ws.is_dir(folder):
                raise ActionError(f"{folder or '.'} is not a folder")
            # Level by level, each folder's entries sorted (a link is a file here).
            found = sorted(
                ws.walk(folder, recursive=recursive),
                key=lambda e: (e.path.count("/"), e.path.split("/")),
            )
            for item in found:
                if item.kind == "link":
                    ws.check_link(item.path)  # listed as a file, never followed
                (dirs if item.kind == "dir" else files).append(entry(item))
    return files, dirs
