"""Template updates: re-apply a newer version of a template to the repositories
made from it, as a 3-way merge by git (docs/updates.md).

git holds all three sides of the merge: the pristine render each branch derives
from (branch ``falsework/pristine``, named in the branch's
``.falsework/scaffold.yaml``), the branch as the team left it, and the new
version's render. The old version is never rendered again.
"""

from falsework.updates.merge import Conflict, Merge, UpdateError, merge_trees
from falsework.updates.render import MissingAnswersError
from falsework.updates.state import PRISTINE_BRANCH, STATE_PATH, ScaffoldState, StateError
from falsework.updates.update import Plan, apply_to_worktree, commit_update, plan_update

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
