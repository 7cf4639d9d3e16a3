"""Upgrade cases: a repository made at an older version of the template, edited
by its team, updated to the working copy by the very planning `falsework update`
runs (``falsework.updates.plan_update``).

A case whose ``expect.yaml`` says ``upgrade-from: <ref>`` is run here:

1. the template's folder is read at ``<ref>`` of the git repository it lives in
   and rendered with the case's answers as an update renders (a rehearsal with
   the update's seed and user); that tree is the repository's pristine commit,
   and the commit on top of it adds ``.falsework/scaffold.yaml``, as publish:git
   with ``scaffold: true`` makes them;
2. the team's edits (the case's ``edits/`` written over the repository, the
   paths of ``deleted:`` removed) are one more commit;
3. the working copy of the template (its folder without ``tests/``) becomes the
   one commit of a throw-away template repository, branch ``working-copy``, and
   :func:`~falsework.updates.plan_update` updates the team's branch to it: the
   new version rendered with the stored answers (renamed parameters mapped,
   ``set:`` laid over), merged by git over the pristine base.

The result is the merged tree (conflict markers included, the state file left
out: it names throw-away commits) with the update's summary; a refused update
(a new required answer, a render that fails) is a ``failed`` result. What makes
the case impossible to run (no git repository, an unknown ref, answers the old
version refuses) is a :class:`~falsework.testing.cases.CaseError`.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falsework.actions.git import GitPolicy
from falsework.errors import FalseworkError
from falsework.runner.dry_run import write_files
from falsework.templates import ParameterValidationError, Template, validate_values
from falsework.testing.cases import EDITS_DIR, Case, CaseError
from falsework.testing.rehearse import File, Rendered, template_files
from falsework.testing.snapshot import read_snapshot
from falsework.types import JSONObject
from falsework.updates import STATE_PATH, Plan, ScaffoldState, UpdateError, plan_update
from falsework.updates.gitrepo import Repo
from falsework.updates.render import extract, find_template, for_updates, render
from falsework.updates.state import TemplateSource
from falsework.updates.update import ZERO, open_clone

if TYPE_CHECKING:
    from falsework.runner import WorkflowRunner

# The working copy's name as a version (so the markers say template-working-copy).
BRANCH = "working-copy"
DATE = "@946684800 +0000"  # 2000-01-01: the commits made here are the same for the same trees


@dataclass(frozen=True)
class _Old:
    """A template's folder read at an older ref."""

    commit: str
    template: Template


class Upgrader:
    """Runs upgrade cases through one runner with an update's limits (made on
    first use: a suite without upgrade cases never builds it). What the cases of
    a suite share is made once: the repository the cases' commits go in, each
    template's working copy as a template repository, each older version read
    from git. :meth:`aclose` removes it all."""

    def __init__(self, settings: Any = None) -> None:
        self._settings = settings
        self._runner: WorkflowRunner | None = None
        self.policy = GitPolicy.local()
        self._root: Path | None = None
        self._target: Repo | None = None
        self._working: dict[Path, Repo] = {}
        self._old: dict[tuple[Path, str], _Old] = {}

    @property
    def runner(self) -> WorkflowRunner:
        if self._runner is None:
            from falsework.config import load_settings
            from falsework.wiring import workflow_runner

            self._runner = for_updates(workflow_runner(self._settings or load_settings()))
        return self._runner

    async def _folder(self, name: str) -> Path:
        if self._root is None:
            self._root = Path(
                await asyncio.to_thread(tempfile.mkdtemp, prefix="falsework-upgrade-")
            )
        return self._root / name

    async def aclose(self) -> None:
        if self._root is not None:
            await asyncio.to_thread(shutil.rmtree, self._root, True)
        self._root, self._target = None, None
        self._working.clear()
        self._old.clear()

    async def upgrade(self, case: Case, edits: Mapping[str, File] | None = None) -> Rendered:
        """Run ``case``; ``edits``: the team's files (default: the case's ``edits/``)."""
        ref = case.expect.upgrade_from
        assert ref is not None
        expect_file = case.folder / "expect.yaml" if case.folder is not None else case.id
        where = f"{expect_file}: upgrade-from {ref}"
        if edits is None:
            edits = await asyncio.to_thread(_edits_of, case)
        if self._target is None:
            self._target = await Repo.init_bare(await self._folder("project.git"), self.policy)
        target = self._target
        source = await self._working_copy(case)
        state, created, tree = await self._created(case, ref, where, target, source)
        head = await self._edited(case, edits, target, state, created, tree)
        try:
            plan = await plan_update(
                target,
                head,
                self.runner,
                to=BRANCH,
                overrides=case.expect.set_answers,
                template_git=source,
            )
        except FalseworkError as exc:  # the update is refused: a result, not a broken case
            return Rendered(
                status="failed",
                error={"name": type(exc).__name__, "message": exc.message, "step": None},
                update={"from": ref, "to": BRANCH, "conflicts": [], "answers": {}},
            )
        merged = await self._folder("merged")
        try:
            return await self._result(plan, ref, target, merged)
        finally:
            await asyncio.to_thread(shutil.rmtree, merged, True)

    async def _old_version(self, case: Case, ref: str, where: str) -> _Old:
        """The template's folder at ``ref`` of the git repository it is in (read
        once per suite)."""
        template = case.template
        known = self._old.get((template.path, ref))
        if known is not None:
            return known
        try:
            origin = await open_clone(template.directory, self.policy)
        except UpdateError:
            raise CaseError(
                f"{where}: the template's folder {template.directory} is not in a git "
                "repository, so it has no older version to upgrade from"
            ) from None
        assert origin.work_tree is not None
        top = await asyncio.to_thread(origin.work_tree.resolve)
        folder = await asyncio.to_thread(template.directory.resolve)
        path = folder.relative_to(top).as_posix() or "."
        commit = await origin.rev(f"{ref}^{{commit}}")
        if commit is None:
            _, shallow = await origin.code("rev-parse", "--is-shallow-repository")
            hint = (
                " (a shallow clone: fetch the history and tags, e.g. actions/checkout's "
                "fetch-depth: 0)"
                if shallow.strip() == "true"
                else ""
            )
            raise CaseError(f"{where}: no tag, branch or commit {ref!r} in {top}{hint}")
        old_folder = await self._folder(f"old-{len(self._old)}")
        try:
            await extract(origin, commit, path, old_folder)
            try:
                old = await asyncio.to_thread(find_template, old_folder, template.ref)
            except UpdateError:
                # renamed since: the folder's only template (the update will say
                # whether the new version is found under the old name)
                old = await asyncio.to_thread(find_template, old_folder, "")
        except UpdateError as exc:
            raise CaseError(f"{where}: {exc.message}") from None
        except FalseworkError as exc:
            raise CaseError(f"{where}: the template there cannot be read: {exc.message}") from None
        self._old[(template.path, ref)] = known = _Old(commit, old)
        return known

    async def _created(
        self, case: Case, ref: str, where: str, target: Repo, source: Repo
    ) -> tuple[ScaffoldState, str, str]:
        """The repository as the template made it at ``ref``: the pristine
        commit, and the state file on top (its commit and tree)."""
        old = await self._old_version(case, ref, where)
        try:
            answers = validate_values(old.template, case.values())
        except ParameterValidationError as exc:
            raise CaseError(
                f"{where}: values.yaml (the answers the repository was made with) does not "
                f"fit the template at {ref}: {'; '.join(str(e['stack']) for e in exc.errors)}"
            ) from None
        workspace = await self._folder("old-render")
        try:
            tree = await render(self.runner, old.template, answers, "", workspace, target)
        except UpdateError as exc:
            raise CaseError(f"{where}: {exc.message}") from None
        finally:
            await asyncio.to_thread(shutil.rmtree, workspace, True)
        pristine = await target.commit_tree(tree, [], f"{ref} (pristine render)\n", date=DATE)
        state = ScaffoldState(
            template=TemplateSource(
                repository=str(source.git_dir),
                version=ref,
                commit=old.commit,
                path=".",
                ref=old.template.ref,
            ),
            pristine=pristine,
            answers=answers,
        )
        created = await target.tree_with(tree, STATE_PATH, state.dumps().encode())
        commit = await target.commit_tree(created, [pristine], "Created\n", date=DATE)
        return state, commit, created

    async def _edited(
        self,
        case: Case,
        edits: Mapping[str, File],
        target: Repo,
        state: ScaffoldState,
        head: str,
        tree: str,
    ) -> str:
        """``head`` (the repository as made, of ``tree``) with the team's edits
        as one more commit; ``head`` itself when the case gives none."""
        if not edits and not case.expect.deleted:
            return head
        if STATE_PATH in edits or STATE_PATH in case.expect.deleted:
            raise CaseError(
                f"{case.id}: the team's edits change {STATE_PATH}, which the case makes (it "
                "names throw-away commits); give edited answers with set: instead"
            )
        lines: list[str] = []
        for path, file in sorted(edits.items()):
            blob = await target.git("hash-object", "-w", "--stdin", stdin=file.data)
            mode = "100755" if file.executable else "100644"
            lines.append(f"{mode} {blob.strip()}\t{path}")
        for path in case.expect.deleted:
            code, kind = await target.code("cat-file", "-t", f"{tree}:{path}")
            if code != 0 or kind.strip() != "blob":
                raise CaseError(
                    f"{case.folder / 'expect.yaml' if case.folder else case.id}: deleted: "
                    f"{path} is not a file of the repository made at {state.template.version}"
                )
            lines.append(f"0 {ZERO}\t{path}")  # mode 0: the entry removed
        with tempfile.TemporaryDirectory(prefix="falsework-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            await target.git("read-tree", tree, env=env)
            info = ("\n".join(lines) + "\n").encode()
            await target.git("update-index", "--index-info", stdin=info, env=env)
            edited = (await target.git("write-tree", env=env)).strip()
        return await target.commit_tree(edited, [head], "The team's edits\n", date=DATE)

    async def _working_copy(self, case: Case) -> Repo:
        """The template's working copy (without ``tests/``) as branch
        ``working-copy`` of a template repository of its own (made once per
        suite)."""
        known = self._working.get(case.template.path)
        if known is not None:
            return known
        name = f"template-{len(self._working)}"
        staged = await self._folder(f"{name}-files")
        files = await asyncio.to_thread(template_files, case.template)
        await asyncio.to_thread(write_files, staged, files)
        repo = await Repo.init_bare(await self._folder(f"{name}.git"), self.policy)
        tree = await repo.tree_of_folder(staged)
        await asyncio.to_thread(shutil.rmtree, staged, True)
        commit = await repo.commit_tree(tree, [], "The working copy\n", date=DATE)
        await repo.git("update-ref", f"refs/heads/{BRANCH}", commit)
        self._working[case.template.path] = repo
        return repo

    async def _result(self, plan: Plan, ref: str, target: Repo, folder: Path) -> Rendered:
        assert plan.tree is not None and plan.merge is not None and plan.new_state is not None
        await extract(target, plan.tree, ".", folder)
        stored = await asyncio.to_thread(read_snapshot, folder) or {}
        files = {p: s.file for p, s in stored.items() if s.file is not None and p != STATE_PATH}
        conflicts: list[JSONObject] = [
            {"path": c.path, "kind": c.kind} for c in plan.merge.conflicts
        ]
        return Rendered(
            status="completed",
            files=files,
            update={
                "from": ref,
                "to": BRANCH,
                "conflicts": conflicts,
                "answers": plan.new_state.answers,
            },
        )


def _edits_of(case: Case) -> dict[str, File]:
    """The files of the case's ``edits/`` (none when it has no such folder)."""
    if case.folder is None:
        return {}
    folder = case.folder / EDITS_DIR
    found: dict[str, File] = {}
    for path, stored in sorted((read_snapshot(folder) or {}).items()):
        if stored.file is None:
            raise CaseError(f"{folder}: {path or EDITS_DIR} is {stored.kind}, not a file")
        found[path] = stored.file
    return found
