"""A template version, fetched and rendered as an update needs it.

The versions of a template are the tags of the git repository it lives in: the
newest by semantic version (``v1.2.0``, ``1.3``; tags that are not versions are
ignored) unless a ref is asked for. A version is rendered as a rehearsal
(``falsework.actions.rehearsal``): side-effecting actions become recorders, the
task id comes from a fixed seed, no request leaves the machine; the tree the
publish step would have pushed is the new pristine tree.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from packaging.version import InvalidVersion, Version

from falsework.actions.git import (
    GitPolicy,
    Remote,
    local_remote,
    open_remote,
    remote_kind,
    run_git,
)
from falsework.actions.paths import is_within
from falsework.actions.rehearsal import Rehearsal
from falsework.confine import relative
from falsework.errors import InputError, UnsafePathError
from falsework.templates import Template, load_templates
from falsework.templates.catalog import candidate_files
from falsework.templates.values import ParameterValidationError, validate_values
from falsework.updates.gitrepo import Repo
from falsework.updates.merge import UpdateError
from falsework.updates.state import ScaffoldState, TemplateSource

if TYPE_CHECKING:
    from falsework.runner import WorkflowRunner

_SHA = re.compile(r"^[0-9a-f]{7,40}$")
SEED = "falsework-update"
# What the render of one repository may hold (a dry run's own limits are for
# answers sent over HTTP: 1,000 files, 7 MB).
MAX_FILES = 20_000
MAX_BYTES = 100_000_000


def for_updates(runner: WorkflowRunner) -> WorkflowRunner:
    """``runner`` with room for a whole repository's render."""
    limits = runner.limits
    runner.limits = dataclasses.replace(
        limits,
        dry_run_max_files=max(limits.dry_run_max_files, MAX_FILES),
        dry_run_max_bytes=max(limits.dry_run_max_bytes, MAX_BYTES),
    )
    return runner


class MissingAnswersError(InputError):
    """The new version asks for answers the scaffold does not have."""

    def __init__(self, message: str, missing: list[str], errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.missing = missing
        self.errors = errors


@dataclass(frozen=True)
class TemplateVersion:
    name: str  # the tag, or the ref asked for
    commit: str


def version_key(tag: str) -> Version | None:
    try:
        return Version(tag)
    except InvalidVersion:
        return None


async def template_remote(
    policy: GitPolicy, repository: str, roots: tuple[Path, ...] | None = None
) -> Remote:
    """The template's repository as a remote: a path on this machine (inside
    ``roots`` unless None: a server reads only its template folders), or a URL
    through the git policy (egress, transports, credentials)."""
    if remote_kind(policy, repository) == "local":
        path = Path(unquote(urlsplit(repository).path) if "://" in repository else repository)
        if roots is not None and not any(is_within(root, path) for root in roots):
            raise UnsafePathError(
                f"the template repository {repository} is a folder on this machine outside "
                "the template folders, so it is not read; keep templates in a template "
                "folder or a git server"
            )
        return local_remote(path)
    return await open_remote(policy, repository)


async def fetch_versions(scratch: Repo, remote: Remote) -> dict[str, str]:
    """Fetch the template repository's tags and branches into ``scratch``;
    ``{tag or branch name: commit}`` (tags first)."""
    if not remote.network:  # a repository on this machine: its objects read in place
        await scratch.borrow_objects(Path(remote.url))
    refspecs = ["+refs/tags/*:refs/falsework/tags/*", "+refs/heads/*:refs/falsework/heads/*"]
    await scratch.git("fetch", "-q", "--no-tags", remote.url, *refspecs, remote=remote)
    out = await scratch.git(
        "for-each-ref", "--format=%(refname) %(objectname) %(*objectname)", "refs/falsework/"
    )
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, obj, peeled = [*line.split(" "), "", ""][:3]
        for prefix in ("refs/falsework/tags/", "refs/falsework/heads/"):
            if name.startswith(prefix):
                found.setdefault(name.removeprefix(prefix), peeled or obj)
    return found


async def resolve_version(scratch: Repo, remote: Remote, to: str | None) -> TemplateVersion:
    """The version to update to: ``to`` (a tag, a branch or a commit), or the
    newest tag by semantic version."""
    return await pick_version(scratch, await fetch_versions(scratch, remote), remote.shown, to)


async def pick_version(
    scratch: Repo, refs: Mapping[str, str], shown: str, to: str | None
) -> TemplateVersion:
    """``to`` among ``refs`` (fetched into ``scratch`` from ``shown``), or the newest tag."""
    if to:
        if to in refs:
            return TemplateVersion(to, refs[to])
        if _SHA.match(to):
            commit = await scratch.rev(f"{to}^{{commit}}")
            if commit is not None:
                return TemplateVersion(to, commit)
        raise UpdateError(f"the template repository {shown} has no tag, branch or commit {to!r}")
    tags = [(key, name) for name in refs if (key := version_key(name)) is not None]
    if not tags:
        raise UpdateError(
            f"the template repository {shown} has no version tags (v1.2.0, 1.3…); "
            "name the version to update to (--to REF)"
        )
    best = max(tags)[1]
    return TemplateVersion(best, refs[best])


async def latest_version(policy: GitPolicy, remote: Remote) -> TemplateVersion | None:
    """The newest version tag of a template repository without fetching it
    (``git ls-remote``); None when it has none."""
    out = await run_git(policy, ["ls-remote", "--tags", remote.url], remote=remote)
    commits: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        name = ref.removeprefix("refs/tags/")
        if name.endswith("^{}"):
            commits[name[:-3]] = sha  # the commit an annotated tag points at
        else:
            commits.setdefault(name, sha)
    tags = [(key, name) for name in commits if (key := version_key(name)) is not None]
    if not tags:
        return None
    best = max(tags)[1]
    return TemplateVersion(best, commits[best])


async def extract(scratch: Repo, commit: str, path: str, dest: Path) -> None:
    """Write the folder ``path`` of ``commit`` into ``dest``."""
    folder = "" if path in ("", ".") else path.strip("/")
    treeish = f"{commit}:{folder}" if folder else f"{commit}^{{tree}}"
    if await scratch.rev(treeish) is None:
        raise UpdateError(f"the template's folder {path!r} is not in commit {commit[:12]}")
    with tempfile.TemporaryDirectory(prefix="falsework-index-") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        await scratch.git("read-tree", treeish, env=env)
        await asyncio.to_thread(functools.partial(dest.mkdir, parents=True, exist_ok=True))
        checkout = Repo(scratch.git_dir, scratch.policy, work_tree=dest)
        await checkout.git("checkout-index", "-a", env=env)


def find_template(folder: Path, ref: str) -> Template:
    """The template ``ref`` in ``folder`` (the only one when ``ref`` is empty)."""
    found: list[Template] = []
    for path in candidate_files(folder):
        if path.parent == folder:
            found.extend(load_templates(path))
    matching = [t for t in found if t.ref == ref] if ref else found
    if len(matching) == 1:
        return matching[0]
    names = ", ".join(t.ref for t in found) or "none"
    raise UpdateError(
        f"expected the template {ref or '(any)'} in the template's folder; found {names}"
    )


def renamed_answers(template: Template, answers: Mapping[str, Any]) -> dict[str, Any]:
    """``answers`` under the names ``template`` gives them: its
    ``falsework.dev/renamed-parameters`` annotation (``old=new,other=renamed``)."""
    result = dict(answers)
    annotations = (template.raw.get("metadata") or {}).get("annotations") or {}
    for pair in str(annotations.get("falsework.dev/renamed-parameters") or "").split(","):
        old, _, new = pair.strip().partition("=")
        old, new = old.strip(), new.strip()
        if old and new and old in result and new not in result:
            result[new] = result.pop(old)
    return result


def answers_for(
    template: Template, state: ScaffoldState, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The stored answers (renamed parameters mapped, ``overrides`` laid over),
    checked against the new version's parameters. ``MissingAnswersError``
    lists the answers the new version needs and the scaffold lacks."""
    answers = renamed_answers(template, state.answers)
    answers.update(overrides)
    try:
        return validate_values(template, answers)
    except ParameterValidationError as exc:
        missing = sorted(str(e.get("argument")) for e in exc.errors if e.get("name") == "required")
        listed = "; ".join(str(e.get("stack") or e.get("message")) for e in exc.errors)
        hint = (
            f" New required parameters: {', '.join(missing)}; give them with --set NAME=VALUE."
            if missing
            else ""
        )
        raise MissingAnswersError(
            f"the stored answers do not fit {template.ref} at the new version: {listed}.{hint}",
            missing,
            exc.errors,
        ) from None


async def render(
    runner: WorkflowRunner,
    template: Template,
    answers: Mapping[str, Any],
    step: str,
    workspace: Path,
    target: Repo,
) -> str:
    """Rehearse ``template`` with ``answers`` in ``workspace``; the tree (in
    ``target``) of the folder its publish step (``step``, or the only push)
    would have pushed, as ``git add -A`` takes it."""
    from falsework.actions.builtin.gitpush import published_folder
    from falsework.runner import LocalTask, MemoryTaskIO, TaskFailedError

    rehearsal = Rehearsal(seed=SEED)
    rehearsal.max_files = runner.limits.dry_run_max_files
    rehearsal.max_bytes = runner.limits.dry_run_max_bytes
    spec = template.task_spec(dict(answers), rehearsal.user)
    task = LocalTask(spec=spec, id=rehearsal.task_id)
    await asyncio.to_thread(functools.partial(workspace.mkdir, parents=True, exist_ok=True))
    try:
        await runner.run(
            task, MemoryTaskIO(), workspace=workspace, dry_run=True, rehearsal=rehearsal
        )
    except TaskFailedError as exc:
        raise UpdateError(
            f"{template.ref} failed to render with the stored answers: {exc.name}: {exc.message}"
        ) from None
    pushes = [c for c in rehearsal.calls if "files" in c]
    chosen = [c for c in pushes if str(c.get("step")) == step] if step else pushes
    if len(chosen) != 1:
        steps = ", ".join(str(c.get("step")) for c in pushes) or "none"
        raise UpdateError(
            f"{template.ref}: expected one publish step{f' {step!r}' if step else ''} "
            f"pushing the repository; found {steps}"
        )
    source = str((chosen[0].get("input") or {}).get("sourcePath") or ".")
    folder = await asyncio.to_thread(published_folder, workspace, relative(source))
    return await target.tree_of_folder(folder)


async def render_version(
    runner: WorkflowRunner,
    scratch: Repo,
    target: Repo,
    state: ScaffoldState,
    version: TemplateVersion,
    overrides: Mapping[str, Any],
    work: Path,
) -> tuple[TemplateSource, dict[str, Any], str]:
    """Render ``version`` of the scaffold's template (fetched into ``scratch``)
    into a tree of ``target``: the new source, the answers used, the tree id."""
    folder = work / "template"
    out = work / "rendered"
    try:
        await extract(scratch, version.commit, state.template.path, folder)
        template = await asyncio.to_thread(find_template, folder, state.template.ref)
        answers = await asyncio.to_thread(answers_for, template, state, overrides)
        tree = await render(runner, template, answers, state.step, out, target)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        await asyncio.to_thread(shutil.rmtree, out, True)
    source = TemplateSource(
        repository=state.template.repository,
        version=version.name,
        commit=version.commit,
        path=state.template.path,
        ref=template.ref,
    )
    return source, answers, tree
