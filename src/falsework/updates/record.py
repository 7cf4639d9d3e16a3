"""What a create records for later updates (publish:git's ``scaffold: true``).

The published commit (the template's own output) becomes the first pristine
commit, pushed as the ``falsework/pristine`` branch; on top of it one more
commit adds ``.falsework/scaffold.yaml`` and is what the target branch gets.
The template's version is read from its folder: the git repository holding
it, the folder's path in it, the commit checked out and its tag.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from falsework.actions.git import GitPolicy, git_result
from falsework.errors import ActionError
from falsework.updates.gitrepo import Repo
from falsework.updates.render import find_template
from falsework.updates.state import STATE_PATH, ScaffoldState, TemplateSource

MESSAGE = "Record the template version for updates (.falsework/scaffold.yaml)\n"


async def _git(policy: GitPolicy, folder: Path, *args: str) -> str | None:
    result = await git_result(policy, ["-C", str(folder), *args], cwd=folder)
    return result.out.strip() if result.code == 0 else None


async def template_source(
    policy: GitPolicy, template_dir: Path, repository: str | None = None
) -> TemplateSource:
    """The version of the template in ``template_dir``: ``ActionError`` when the
    folder is not in a git repository (updates need its versions as commits)."""
    root = await _git(policy, template_dir, "rev-parse", "--show-toplevel")
    commit = await _git(policy, template_dir, "rev-parse", "HEAD")
    if root is None or commit is None:
        raise ActionError(
            f"scaffold: the template's folder {template_dir} is not in a git repository with "
            "a commit, so there is no version to update from later; keep templates in git "
            "(tag versions v1.0.0, v1.1.0…) to record scaffolds"
        )
    tag = await _git(policy, template_dir, "describe", "--tags", "--exact-match", "HEAD")
    origin = await _git(policy, template_dir, "config", "--get", "remote.origin.url")
    folder = await asyncio.to_thread(_relative, template_dir, Path(root))
    template = await asyncio.to_thread(find_template, template_dir, "")
    return TemplateSource(
        repository=repository or origin or root,
        version=tag or commit,
        commit=commit,
        path=folder or ".",
        ref=template.ref,
    )


def _relative(folder: Path, root: Path) -> str:
    return folder.resolve().relative_to(root.resolve()).as_posix()


async def record(
    repo: Repo,
    pristine: str,
    source: TemplateSource,
    *,
    answers: Mapping[str, Any],
    secrets: list[str],
    step: str,
    source_path: str,
) -> tuple[str, ScaffoldState]:
    """The commit to push to the target branch (``pristine`` with the state
    file), and the state recorded."""
    state = ScaffoldState(
        template=source,
        pristine=pristine,
        answers=dict(answers),
        secrets=tuple(sorted(secrets)),
        step=step,
        source_path=source_path,
    )
    tree = await repo.tree_with(f"{pristine}^{{tree}}", STATE_PATH, state.dumps().encode())
    return await repo.commit_tree(tree, [pristine], MESSAGE), state
