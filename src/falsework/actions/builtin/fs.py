"""``fs:*`` — rename, delete and list files in the workspace."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from falsework.actions.context import ActionContext
from falsework.actions.contract import ActionInput, action
from falsework.actions.paths import resolve_safe_path
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
    workspace = ctx.workspace
    pairs: list[tuple[Path, Path, RenameItem]] = []
    for item in ctx.input.files:
        if not item.from_ or not item.to:
            raise ActionError("Each file needs both a 'from' and a 'to' path")
        pairs.append(
            (resolve_safe_path(workspace, item.from_), resolve_safe_path(workspace, item.to), item)
        )
    for source, dest, item in pairs:
        await ctx.in_thread(_rename, source, dest, item)
        ctx.logger.info(f"Renamed {item.from_} to {item.to}")


def _rename(source: Path, dest: Path, item: RenameItem) -> None:
    if not os.path.lexists(source):
        raise ActionError(f"Cannot rename {item.from_!r}: it does not exist")
    if os.path.lexists(dest):
        if not item.overwrite:
            raise ActionError(f"Cannot rename {item.from_!r}: {item.to!r} already exists")
        _remove(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(dest))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


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
        resolve_safe_path(workspace, pattern)  # refuses `..`, absolute paths, escaping links
        removed = await ctx.in_thread(_delete, workspace, pattern)
        for rel in removed:
            ctx.logger.info(f"File {rel} deleted successfully")


def _delete(workspace: Path, pattern: str) -> list[str]:
    if not has_magic(pattern):
        path = resolve_safe_path(workspace, pattern)
        if not os.path.lexists(path):
            return []
        _remove(path)
        return [path.relative_to(workspace.resolve()).as_posix()]
    regex = compile_glob(pattern)
    root = workspace.resolve()
    removed: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        for name in list(dirnames):
            if regex.match(prefix + name):
                _remove(Path(dirpath, name))
                dirnames.remove(name)
                removed.append(prefix + name)
        for name in filenames:
            if regex.match(prefix + name):
                Path(dirpath, name).unlink()
                removed.append(prefix + name)
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
    workspace = ctx.workspace
    folders = [resolve_safe_path(workspace, p) for p in ctx.input.paths]
    files, dirs = await ctx.in_thread(_readdir, workspace, folders, ctx.input.recursive)
    ctx.output("files", files)
    ctx.output("folders", dirs)


def _readdir(
    workspace: Path, folders: list[Path], recursive: bool
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    root = workspace.resolve()
    files: list[dict[str, str]] = []
    dirs: list[dict[str, str]] = []

    def entry(path: Path) -> dict[str, str]:
        return {"name": path.name, "path": path.relative_to(root).as_posix(), "fullPath": str(path)}

    for folder in folders:
        if not folder.is_dir():
            raise ActionError(f"{folder.relative_to(root).as_posix() or '.'} is not a folder")
        pending = [folder]
        while pending:
            current = pending.pop(0)
            for child in sorted(current.iterdir()):
                if child.is_dir() and not child.is_symlink():
                    dirs.append(entry(child))
                    if recursive:
                        pending.append(child)
                else:
                    files.append(entry(child))
    return files, dirs
