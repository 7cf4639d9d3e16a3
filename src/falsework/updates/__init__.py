"""Template updates: re-apply a newer version of a template to the repositories
made from it, as a 3-way merge by git (docs/updates.md).

git holds all three sides of the merge: the pristine render each branch derives
from (branch ``falsework/pristine``, named in the branch's
``.falsework/scaffold.yaml``), the branch as the team left it, and the new
version's render. The old version is never rendered again.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from falsework.updates.merge import Conflict, Merge, UpdateError, merge_trees
    from falsework.updates.render import MissingAnswersError
    from falsework.updates.state import PRISTINE_BRANCH, STATE_PATH, ScaffoldState, StateError
    from falsework.updates.update import Plan, apply_to_worktree, commit_update, plan_update

# name -> its module, imported when the name is first asked for: the scaffold
# service (updates.service) a plain `falsework run` builds needs none of them
_WHERE = {
    **dict.fromkeys(("Conflict", "Merge", "UpdateError", "merge_trees"), "merge"),
    "MissingAnswersError": "render",
    **dict.fromkeys(("PRISTINE_BRANCH", "STATE_PATH", "ScaffoldState", "StateError"), "state"),
    **dict.fromkeys(("Plan", "apply_to_worktree", "commit_update", "plan_update"), "update"),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "PRISTINE_BRANCH",
    "STATE_PATH",
    "Conflict",
    "Merge",
    "MissingAnswersError",
    "Plan",
    "ScaffoldState",
    "StateError",
    "UpdateError",
    "apply_to_worktree",
    "commit_update",
    "merge_trees",
    "plan_update",
]
