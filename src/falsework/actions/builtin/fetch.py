"""``fetch:*`` — copy or render content from the template folder, a local
folder or a git repository into the workspace."""

from __future__ import annotations

import shutil
import stat
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import Field

from falsework.actions.context import ActionContext
from falsework.actions.contract import ActionInput, action
from falsework.actions.git import safe_url
from falsework.actions.policies import SourcePolicy
from falsework.actions.sources import locate
from falsework.confine import Entry, Tree, read_regular, relative
from falsework.errors import (
    ActionError,
    InputError,
    TemplateRenderError,
    TemplateSyntaxError,
    UnsafePathError,
)
from falsework.globs import matches_or_under
from falsework.templating.jsvalue import js_json

if TYPE_CHECKING:
    from falsework.templating import Renderer

# ---------------------------------------------------------------- fetch:plain


TOKEN_HELP = (
    "A token for a git repository over http(s) (e.g. `${{ secrets.GITHUB_TOKEN }}`): sent "
    "as the password of Basic authentication in git's environment, never on its command "
    "line or in a log line. Without it, a credential the server configures for the host is "
    "used if its scope names the repository (e.g. its owner)."
)


class FetchPlainInput(ActionInput):
    url: str = Field(
        description="Where to fetch from: a path relative to the template folder, "
        "a local folder under an allowed root, a git URL (file://, https://…/repo.git, "
        "`#ref`, `?path=sub/dir`), or a git host's folder or file page as a browser shows "
        "it (https://github.com/o/r/tree/<ref>/<path>, GitLab's …/-/tree/…, Gitea's "
        "…/src/branch/…, Bitbucket's …/src/…; a private repository needs `token` or a "
        "configured credential)."
    )
    target_path: str = Field("./", description="Workspace folder to write into.")
    token: str | None = Field(None, description=TOKEN_HELP)


@action(
    id="fetch:plain",
    rebuilds_workspace=True,
    description="Downloads content and places it in the workspace, or optionally in a "
    "subdirectory specified by the `targetPath` input option.",
    input=FetchPlainInput,
    dry_run=True,
    settings=SourcePolicy,
    examples=[
        (
            "Copy the template folder's skeleton into the workspace",
            "steps:\n  - action: fetch:plain\n    id: fetch-plain\n    name: Fetch plain\n"
            "    input:\n      url: ./skeleton\n",
        ),
        (
            "Copy into a sub-folder of the workspace",
            "steps:\n  - action: fetch:plain\n    id: fetch-plain\n    name: Fetch plain\n"
            "    input:\n      url: ./skeleton\n      targetPath: docs\n",
        ),
    ],
)
async def fetch_plain(ctx: ActionContext[FetchPlainInput], sources: SourcePolicy) -> None:
    ctx.logger.info("Fetching plain content from remote URL")
    target = relative(ctx.input.target_path)
    source = await locate(ctx, sources, ctx.input.url, ctx.input.token)
    if not source.is_dir():
        raise ActionError(f"{ctx.input.url!r} is not a folder (use fetch:plain:file for a file)")
    await ctx.in_thread(_copy_tree, source, ctx.input.url, ctx.workspace, target, ctx.signal.is_set)


# A repository's own folder is never copied (it could configure a later git call).
SKIP = frozenset({".git"})


def _source(source: Path, url: str) -> Tree:
    """The fetched folder, opened so that nothing is read through a link; errors
    name its files as the template does (``skeleton/foo``) or after the URL."""
    if not (urlsplit(url).scheme or url.startswith(("git@", "git+", "/"))):
        try:
            name = relative(url)
        except UnsafePathError:
            pass  # `a/../../t/skeleton`: back inside the template folder by another way
        else:
            where = f"the fetched folder ./{name}"
            return Tree(source, where=where, prefix=f"{name}/" if name else "")
    return Tree(source, where=f"the fetched folder ({safe_url(url)})")


def _entries(source: Tree) -> list[Entry]:
    """Every entry of a fetched folder, refused as a whole (before anything is
    written) when a link in it points outside it or an entry is not a file,
    folder or link."""
    entries = list(source.walk(skip=SKIP))
    for entry in entries:
        if entry.kind == "link":
            source.check_link(entry.path)
        elif entry.kind == "other":
            raise ActionError(
                f"{source.show(entry.path)} is not a file, folder or symbolic link "
                "(a device, socket or pipe); it is not copied"
            )
    return entries


def _copy_tree(
    source: Path, url: str, workspace: Path, target: str, cancelled: Callable[[], bool]
) -> None:
    with _source(source, url) as src, Tree(workspace) as ws:
        entries = _entries(src)
        ws.mkdir(target)
        for entry in entries:
            if cancelled():
                return
            dest = f"{target}/{entry.path}" if target else entry.path
            if entry.kind == "dir":
                ws.mkdir(dest)
            elif entry.kind == "link":
                ws.symlink(dest, src.readlink(entry.path))
            else:
                with src.open_read(entry.path) as data:
                    out = ws.open_write(dest, mode=stat.S_IMODE(entry.stat.st_mode))
                    if out is not None:  # always, with replace (the default)
                        with out:
                            shutil.copyfileobj(data, out, 1 << 20)


class FetchPlainFileInput(ActionInput):
    url: str = Field(description="The file to fetch (same forms as fetch:plain).")
    target_path: str = Field(description="Workspace path of the file to write.")
    token: str | None = Field(None, description=TOKEN_HELP)


@action(
    id="fetch:plain:file",
    rebuilds_workspace=True,
    description="Downloads a single file and places it in the workspace.",
    input=FetchPlainFileInput,
    dry_run=True,
    settings=SourcePolicy,
    examples=[
        (
            "Copy one file from the template folder",
            "steps:\n  - action: fetch:plain:file\n    id: fetch-file\n    name: Fetch file\n"
            "    input:\n      url: ./skeleton/README.md\n      targetPath: README.md\n",
        )
    ],
)
async def fetch_plain_file(ctx: ActionContext[FetchPlainFileInput], sources: SourcePolicy) -> None:
    ctx.logger.info("Fetching plain content from remote URL")
    target = relative(ctx.input.target_path)
    source = await locate(ctx, sources, ctx.input.url, ctx.input.token)
    if not source.is_file():
        raise ActionError(f"{ctx.input.url!r} is not a file")
    await ctx.in_thread(_copy_file, source, ctx.input.url, ctx.workspace, target)


def _copy_file(source: Path, url: str, workspace: Path, target: str) -> None:
    # The file's content is copied (a link named by the URL was verified to
    # stay in its folder by locate): a link is never recreated in the workspace.
    data, st = read_regular(source, url)
    with Tree(workspace) as ws:
        ws.write_bytes(target, data, mode=stat.S_IMODE(st.st_mode))


# ------------------------------------------------------------- fetch:template


class FetchTemplateInput(ActionInput):
    url: str = Field(description="The skeleton folder (same forms as fetch:plain).")
    target_path: str = Field("./", description="Workspace folder to write into.")
    values: dict[str, Any] = Field(
        default_factory=dict, description="Values available as `values` in the skeleton."
    )
    copy_without_render: list[str] | None = Field(
        None,
        description="Deprecated: globs of files/folders copied as-is (names not rendered "
        "either). Backstage 2.0 and later ignore it and render them; Falsework honours "
        "it and warns per file. Use copyWithoutTemplating.",
    )
    copy_without_templating: list[str] | None = Field(
        None,
        description="Globs of files/folders whose contents are copied without templating; "
        "their names are still rendered.",
    )
    cookiecutter_compat: bool = Field(
        False,
        description="Cookiecutter mode: `{{ }}` delimiters, values as `cookiecutter`, "
        "the `jsonify` filter.",
    )
    template_file_extension: str | bool | None = Field(
        None,
        description="Only files with this extension are rendered (and lose it); "
        "`true` means `.njk`. All names are rendered.",
    )
    replace: bool = Field(False, description="Overwrite files already in the workspace.")
    trim_blocks: bool = Field(False, description="Remove the first newline after a block tag.")
    lstrip_blocks: bool = Field(
        False, description="Strip whitespace before a block tag at the start of a line."
    )
    token: str | None = Field(None, description=TOKEN_HELP)


SKELETON_EXAMPLE = (
    "steps:\n  - action: fetch:template\n    id: fetch-template\n    name: Fetch template\n"
    "    input:\n      url: ./skeleton\n      values:\n        name: my-service\n"
)


@action(
    id="fetch:template",
    rebuilds_workspace=True,
    description="Downloads a skeleton, templates variables into file and directory names "
    "and content, and places the result in the workspace, or optionally in a subdirectory "
    "specified by the `targetPath` input option.",
    input=FetchTemplateInput,
    dry_run=True,
    settings=SourcePolicy,
    examples=[
        ("Render the template folder's skeleton into the workspace", SKELETON_EXAMPLE),
        (
            "Copy GitHub workflows without templating and render only .njk files elsewhere",
            "steps:\n  - action: fetch:template\n    id: fetch-template\n"
            "    name: Fetch template\n    input:\n      url: ./skeleton\n"
            "      targetPath: service\n      copyWithoutTemplating:\n"
            "        - .github/workflows/*\n      values:\n        name: my-service\n",
        ),
        (
            "A cookiecutter skeleton",
            "steps:\n  - action: fetch:template\n    id: fetch-cookiecutter\n"
            "    name: Fetch cookiecutter skeleton\n    input:\n      url: ./cookiecutter\n"
            "      cookiecutterCompat: true\n      values:\n        name: my-service\n",
        ),
    ],
)
async def fetch_template(ctx: ActionContext[FetchTemplateInput], sources: SourcePolicy) -> None:
    inp = ctx.input
    extension = _extension(inp.template_file_extension)
    if extension and (inp.copy_without_render or inp.copy_without_templating):
        raise InputError(
            "templateFileExtension cannot be combined with copyWithoutRender or "
            "copyWithoutTemplating"
        )
    if extension and inp.cookiecutter_compat:
        raise InputError("templateFileExtension cannot be combined with cookiecutterCompat")
    ctx.logger.info("Fetching template content from remote URL")
    target = relative(inp.target_path)
    source = await locate(ctx, sources, inp.url, inp.token)
    if not source.is_dir():
        raise ActionError(f"{inp.url!r} is not a folder (use fetch:template:file for a file)")
    job = _SkeletonJob(
        source=source,
        url=inp.url,
        workspace=ctx.workspace,
        target=target,
        values=inp.values if "values" in inp.model_fields_set else None,
        render=_render_fn(ctx, inp.cookiecutter_compat, inp.trim_blocks, inp.lstrip_blocks),
        context={("cookiecutter" if inp.cookiecutter_compat else "values"): inp.values},
        without_templating=tuple(inp.copy_without_templating or ()),
        without_render=tuple(inp.copy_without_render or ()),
        extension=extension,
        replace=inp.replace,
        log=ctx.logger.info,
        warn=ctx.logger.warning,
        cancelled=ctx.signal.is_set,
    )
    await ctx.in_thread(job.run)


def _extension(value: str | bool | None) -> str | None:
    if value is True:
        return ".njk"
    if not value:
        return None
    text = str(value)
    return text if text.startswith(".") else "." + text


RenderFn = Callable[[str, dict[str, Any]], str]


def _render_fn(
    ctx: ActionContext[Any], cookiecutter: bool, trim_blocks: bool, lstrip_blocks: bool
) -> RenderFn:
    renderer = _cookiecutter_renderer(ctx) if cookiecutter else ctx.renderer

    def render(source: str, context: dict[str, Any]) -> str:
        return renderer.render_string(
            source, context, trim_blocks=trim_blocks, lstrip_blocks=lstrip_blocks
        )

    return render


_COOKIECUTTER: weakref.WeakKeyDictionary[Renderer, Renderer] = weakref.WeakKeyDictionary()


def _cookiecutter_renderer(ctx: ActionContext[Any]) -> Renderer:
    # One cookiecutter-mode renderer per runner renderer, so its compile cache is
    # shared by every task like the main one, with the same time and size limits.
    main = ctx.renderer
    found = _COOKIECUTTER.get(main)
    if found is None:
        found = type(main)(
            timeout=main.timeout, max_output=main.max_output, cookiecutter_compat=True
        )
        _COOKIECUTTER[main] = found
    return found


def _has_tags(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def _skipped(path: str) -> bool:
    # A name segment that rendered empty drops the entry (conditional files).
    return path == "" or path.startswith("/") or "//" in path


def _text(data: bytes) -> str | None:
    """``data`` as text, or None when it is binary (a NUL byte near the start,
    or not UTF-8)."""
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass
class _SkeletonJob:
    """Renders one skeleton folder; runs in a worker thread in one go (one hop
    for the whole tree, not one per file)."""

    source: Path
    url: str
    workspace: Path
    target: str  # inside the workspace, relative
    values: dict[str, Any] | None  # as given (None: not given)
    render: RenderFn
    context: dict[str, Any]
    without_templating: tuple[str, ...]
    without_render: tuple[str, ...]
    extension: str | None
    replace: bool
    log: Callable[[str], None]
    warn: Callable[[str], None]
    cancelled: Callable[[], bool]

    def run(self) -> None:
        with _source(self.source, self.url) as src, Tree(self.workspace) as ws:
            entries = _entries(src)
            # Level by level, as Backstage's globbing lists them (a folder still
            # comes before its contents), by name within a level.
            entries.sort(key=lambda e: (e.path.count("/"), e.path))
            self.log("Listing files and directories in template")
            # Backstage writes the values with sorted keys, and nothing when none
            # were given.
            values = "" if self.values is None else " " + js_json(self.values, sort_keys=True)
            self.log(
                f"Processing {len(entries)} template files/directories with input values{values}"
            )
            ws.mkdir(self.target)
            for entry in entries:
                if self.cancelled():
                    return
                self._one(src, ws, entry)
        self.log(f"Template result written to {self.workspace / self.target}")

    def _name(self, rel: str) -> str:
        return self.render(rel, self.context) if _has_tags(rel) else rel

    def _one(self, src: Tree, ws: Tree, entry: Entry) -> None:
        rel, kind = entry.path, entry.kind
        location = rel + "/" if kind == "dir" else rel
        if self.extension:
            render_contents = kind == "file" and rel.endswith(self.extension)
            out = self._name(rel[: -len(self.extension)] if render_contents else rel)
        elif self.without_render and matches_or_under(rel, self.without_render):
            render_contents, out = False, rel
            if kind == "file":
                self.warn(
                    f"{location} is copied as it is because of copyWithoutRender, which "
                    "Backstage 2.0 and later ignore (they render this file): spell it "
                    "copyWithoutTemplating to get the same on both"
                )
        else:
            render_contents = not matches_or_under(rel, self.without_templating)
            out = self._name(rel)
        if _skipped(out if kind != "dir" else out + "/"):
            return
        # A rendered name stays inside targetPath (`..` in a value is refused).
        name = relative(out, f"targetPath {self.target or '.'!r}")
        dest = f"{self.target}/{name}" if self.target else name
        if not self.replace and ws.lstat(dest) is not None:
            return
        if not render_contents and not self.extension and kind != "dir":
            # (Backstage says it of each file under a folder pattern, not the folder)
            self.log(f"Copying file/directory {location} without processing.")
        if kind == "dir":
            self.log(f"Writing directory {location} to template output path.")
            ws.mkdir(dest)
            return
        if kind == "link":
            self.log(
                f"Copying file binary or symbolic link at {location}, to template output path."
            )
            ws.symlink(dest, src.readlink(rel))
            return
        mode = entry.stat.st_mode
        data = src.read_bytes(rel)
        text = _text(data)
        if text is None:
            self.log(
                f"Copying file binary or symbolic link at {location}, to template output path."
            )
        else:
            self.log(f"Writing file {location} to template output path with mode {mode}.")
            if render_contents:
                if _has_tags(text):
                    try:
                        data = self.render(text, self.context).encode("utf-8")
                    except (TemplateSyntaxError, TemplateRenderError) as exc:
                        # a file that does not render is a render error, as in
                        # Backstage, and names the file
                        raise TemplateRenderError(f"{location}: {exc.message}") from None
        # (without replace: nothing was there, and anything there now is kept)
        ws.write_bytes(dest, data, mode=stat.S_IMODE(mode), replace=self.replace)


# --------------------------------------------------------- fetch:template:file


class FetchTemplateFileInput(ActionInput):
    url: str = Field(description="The template file (same forms as fetch:plain).")
    target_path: str = Field(description="Workspace path of the rendered file.")
    values: dict[str, Any] = Field(
        default_factory=dict, description="Values available as `values` in the file."
    )
    cookiecutter_compat: bool = Field(False, description="Cookiecutter mode (see fetch:template).")
    replace: bool = Field(False, description="Overwrite the file if it exists.")
    trim_blocks: bool = Field(False, description="Remove the first newline after a block tag.")
    lstrip_blocks: bool = Field(
        False, description="Strip whitespace before a block tag at the start of a line."
    )
    token: str | None = Field(None, description=TOKEN_HELP)


@action(
    id="fetch:template:file",
    rebuilds_workspace=True,
    description="Downloads a single file and templates variables into it, placing the "
    "result in the workspace.",
    input=FetchTemplateFileInput,
    dry_run=True,
    settings=SourcePolicy,
    examples=[
        (
            "Render one file from the template folder",
            "steps:\n  - action: fetch:template:file\n    id: fetch-template-file\n"
            "    name: Fetch template file\n    input:\n      url: ./skeleton/README.md\n"
            "      targetPath: README.md\n      values:\n        name: my-service\n",
        )
    ],
)
async def fetch_template_file(
    ctx: ActionContext[FetchTemplateFileInput], sources: SourcePolicy
) -> None:
    inp = ctx.input
    ctx.logger.info("Fetching template file content from remote URL")
    target = relative(inp.target_path)
    source = await locate(ctx, sources, inp.url, inp.token)
    if not source.is_file():
        raise ActionError(f"{inp.url!r} is not a file")
    render = _render_fn(ctx, inp.cookiecutter_compat, inp.trim_blocks, inp.lstrip_blocks)
    context = {("cookiecutter" if inp.cookiecutter_compat else "values"): inp.values}
    written = await ctx.in_thread(
        _render_file, source, inp.url, ctx.workspace, target, render, context, inp.replace
    )
    if written:
        ctx.logger.info(f"Template file {inp.target_path} written")
    else:
        ctx.logger.info(f"File {inp.target_path} already exists; not replaced")


def _render_file(
    source: Path,
    url: str,
    workspace: Path,
    target: str,
    render: RenderFn,
    context: dict[str, Any],
    replace: bool,
) -> bool:
    with Tree(workspace) as ws:
        if ws.lstat(target) is not None and not replace:
            return False
        data, st = read_regular(source, url)
        text = _text(data)
        if text is not None and _has_tags(text):
            data = render(text, context).encode("utf-8")
        return ws.write_bytes(target, data, mode=stat.S_IMODE(st.st_mode))
