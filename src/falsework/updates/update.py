"""Computing an update, and writing it into a working tree.

:func:`plan_update` reads the branch's state file, resolves the version to
update to, renders it with the stored answers, commits that render as the new
pristine commit, and merges it into the branch over the recorded pristine base.
Everything it makes is a git object (trees and commits made with fixed dates,
so a rerun makes the very same ones); nothing is pushed and no working tree is
touched. :func:`apply_to_worktree` then writes a plan into a clone's working
tree (``falsework update REPO_DIR``); ``falsework.updates.publish`` pushes it
as a branch and opens a pull request (an update task on a server).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falsework.actions.git import GitPolicy, git_result
from falsework.updates.gitrepo import Repo, scratch_root
from falsework.updates.merge import Merge, UpdateError, merge_trees
from falsework.updates.render import (
    TemplateVersion,
    render_version,
    resolve_version,
    template_remote,
)
from falsework.updates.state import PRISTINE_BRANCH, STATE_PATH, ScaffoldState, StateError

if TYPE_CHECKING:
    from falsework.runner import WorkflowRunner

ZERO = "0" * 40


@dataclass
class Plan:
    """An update of one branch: from ``state`` at ``head`` to ``version``."""

    state: ScaffoldState
    head: str
    version: TemplateVersion
    new_state: ScaffoldState | None = None
    pristine: str | None = None  # the new pristine commit
    merge: Merge | None = None
    tree: str | None = None  # the merged tree with the new state file
    date: str = "@0 +0000"  # the template version's commit date, for our commits

    @property
    def up_to_date(self) -> bool:
        return self.tree is None

    @property
    def conflicts(self) -> list[str]:
        return self.merge.conflicted_paths if self.merge is not None else []

    def title(self) -> str:
        ref = self.state.template.ref or self.state.template.repository
        return f"Update {ref} from {self.state.template.version} to {self.version.name}"

    def description(self) -> str:
        lines = [
            f"{self.title()}.",
            "",
            f"Template commit {self.state.template.commit[:12]} → {self.version.commit[:12]}; "
            f"merged over the pristine render {self.state.pristine[:12]} "
            f"(branch `{PRISTINE_BRANCH}`).",
        ]
        if self.conflicts:
            lines += [
                "",
                f"**{len(self.conflicts)} conflicted file(s)** (conflict markers to resolve):",
                *(f"- `{path}`" for path in self.conflicts),
            ]
        return "\n".join(lines)


async def read_state(repo: Repo, rev: str) -> ScaffoldState:
    text = await repo.show(rev, STATE_PATH)
    if text is None:
        raise StateError(
            f"{STATE_PATH} is not in {rev}: this branch was not published with scaffold "
            "recording (publish:git's `scaffold: true`), so there is no base to update from"
        )
    return ScaffoldState.loads(text, f"{STATE_PATH} at {rev}")


async def plan_update(
    target: Repo,
    head: str,
    runner: WorkflowRunner,
    *,
    to: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    pristine_tip: str | None = None,
    template_git: Repo | None = None,
    template_roots: tuple[Path, ...] | None = None,
) -> Plan:
    """The update of ``head`` (a commit of ``target``) to ``to`` (default: the
    newest version). ``pristine_tip``: where the pristine branch is now (the
    new pristine commit goes on top of it, or is it when it holds the same
    tree). ``template_git``: a repository to fetch the template into (default: a
    temporary one); ``template_roots``: where a template repository on this
    machine may be (None: anywhere)."""
    state = await read_state(target, head)
    if await target.rev(f"{state.pristine}^{{commit}}") is None:
        raise StateError(
            f"the pristine commit {state.pristine[:12]} that {STATE_PATH} names is not in the "
            f"repository: fetch the {PRISTINE_BRANCH} branch"
        )
    with tempfile.TemporaryDirectory(prefix="falsework-update-", dir=scratch_root()) as tmp:
        work = Path(tmp)
        scratch = template_git
        if scratch is None:
            scratch = await Repo.init_bare(work / "template.git", target.policy)
        remote = await template_remote(target.policy, state.template.repository, template_roots)
        version = await resolve_version(scratch, remote, to)
        plan = Plan(state=state, head=head, version=version)
        if version.commit == state.template.commit and not overrides:
            return plan
        plan.date = await scratch.commit_date(version.commit)
        source, answers, tree = await render_version(
            runner, scratch, target, state, version, overrides or {}, work
        )
    parent = pristine_tip or state.pristine
    if pristine_tip is not None and await target.rev(f"{pristine_tip}^{{tree}}") == tree:
        pristine = pristine_tip
    else:
        message = f"{source.ref or 'template'} {version.name} (pristine render)\n"
        pristine = await target.commit_tree(tree, [parent], message, date=plan.date)
    ours = await _tree(target, head)
    base = await _tree(target, state.pristine)
    merge = await merge_trees(
        target, base, ours, tree, ours_label="project", theirs_label=f"template-{version.name}"
    )
    new_state = state.moved_to(source, pristine, answers)
    plan.new_state, plan.pristine, plan.merge = new_state, pristine, merge
    plan.tree = await target.tree_with(merge.tree, STATE_PATH, new_state.dumps().encode())
    return plan


async def _tree(repo: Repo, rev: str) -> str:
    tree = await repo.rev(f"{rev}^{{tree}}")
    if tree is None:
        raise UpdateError(f"{rev} is not a commit of the repository")
    return tree


async def commit_update(repo: Repo, plan: Plan) -> str:
    """The update as one commit on top of ``plan.head`` (the same commit for the
    same plan, so a rerun finds what an earlier run pushed)."""
    assert plan.tree is not None
    message = plan.title() + "\n\n" + plan.description() + "\n"
    return await repo.commit_tree(plan.tree, [plan.head], message, date=plan.date)


async def apply_to_worktree(repo: Repo, plan: Plan) -> None:
    """Write ``plan`` into the clone's working tree and index: the merged files,
    each conflict as markers in the file and as git's conflict stages in the
    index (``git status`` lists them as unmerged; ``git mergetool`` works), and
    the new pristine commit as the local ``falsework/pristine`` branch. Refused
    when the working tree has changes to tracked files or HEAD moved."""
    assert plan.tree is not None and plan.pristine is not None and plan.merge is not None
    changed = await repo.git("status", "--porcelain", "--untracked-files=no")
    if changed.strip():
        files = ", ".join(line[3:] for line in changed.splitlines()[:5])
        raise UpdateError(
            f"the working tree has uncommitted changes ({files}); commit or stash them "
            "before updating, so the update's changes are the only ones"
        )
    if await repo.rev("HEAD") != plan.head:
        raise UpdateError("HEAD moved while the update was computed; run it again")
    await repo.git("read-tree", "-u", "-m", "HEAD", plan.tree)
    lines: list[str] = []
    for conflict in plan.merge.conflicts:
        if not conflict.stages:
            continue
        lines.append(f"0 {ZERO}\t{conflict.path}")
        lines += [f"{m} {blob} {stage}\t{conflict.path}" for m, blob, stage in conflict.stages]
    if lines:
        await repo.git("update-index", "--index-info", stdin=("\n".join(lines) + "\n").encode())
    await repo.git("update-ref", f"refs/heads/{PRISTINE_BRANCH}", plan.pristine)


async def open_clone(folder: Path, policy: GitPolicy) -> Repo:
    """The git repository whose working tree ``folder`` is (``UpdateError`` if none)."""
    result = await git_result(
        policy, ["-C", str(folder), "rev-parse", "--absolute-git-dir", "--show-toplevel"]
    )
    if result.code != 0:
        raise UpdateError(f"{folder} is not in a git repository with a working tree")
    git_dir, top = result.out.splitlines()[:2]
    return Repo(Path(git_dir), policy, work_tree=Path(top))


@dataclass(frozen=True)
class Status:
    """Where a branch stands: the version it has absorbed and the newest one."""

    state: ScaffoldState
    latest: TemplateVersion

    @property
    def behind(self) -> bool:
        return self.latest.commit != self.state.template.commit

    def to_json(self) -> dict[str, Any]:
        return {
            "template": self.state.template.ref,
            "repository": self.state.template.repository,
            "version": self.state.template.version,
            "commit": self.state.template.commit,
            "latest": self.latest.name,
            "latestCommit": self.latest.commit,
            "updateAvailable": self.behind,
        }


async def status(repo: Repo, head: str, to: str | None = None) -> Status:
    """The version ``head`` has absorbed and the one an update would bring."""
    state = await read_state(repo, head)
    with tempfile.TemporaryDirectory(prefix="falsework-update-") as tmp:
        scratch = await Repo.init_bare(Path(tmp) / "template.git", repo.policy)
        remote = await template_remote(repo.policy, state.template.repository)
        return Status(state, await resolve_version(scratch, remote, to))
