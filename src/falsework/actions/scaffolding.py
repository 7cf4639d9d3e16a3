"""What the scaffold actions ask of template updates: publish:git's ``scaffold:
true`` records the template version a repository was made from, scaffold:update
renders a newer version and merges it (docs/updates.md).

Template updates (``falsework.updates``) render through the runner, which runs
these actions: so the actions layer only names the service here, as a
``Protocol``, and the edge (``falsework.wiring``) hands ``falsework.updates``'s
implementation to the two action families in their settings
(``PublishPolicy.scaffolds``, ``UpdatePolicy.scaffolds``). The branch names the
actions and the updates share live here too, the lowest place both can read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from falsework.actions.context import StepLogger
    from falsework.actions.git import GitPolicy, Remote

# the branch that keeps each template render (the base of the next 3-way merge)
PRISTINE_BRANCH = "falsework/pristine"
# the branches scaffold:update pushes, one per template version
UPDATE_PREFIX = "falsework/update/"
# the ``kind`` of a scaffold:update step's ``scaffold`` output (a create's has none)
UPDATE_KIND = "update"
_BRANCH_PART = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ScaffoldRecord:
    """What publish:git records with ``scaffold: true``: the render (``pristine``,
    a commit in the step's repository) of the task's template folder, with the
    answers and the step that made it."""

    pristine: str
    template_dir: Path
    template_repository: str | None  # the template's repository, when given
    answers: dict[str, Any]
    secrets: list[str]  # answers that are secrets are never recorded
    step: str
    source_path: str
    author_name: str
    author_email: str


@dataclass(frozen=True)
class UpdateRequest:
    """One scaffold:update of ``branch`` on ``remote`` (named ``url`` in the
    server's list) to the template version ``to`` (None: the newest tag)."""

    remote: Remote
    url: str
    branch: str
    to: str | None
    overrides: dict[str, Any]
    git: GitPolicy
    # where template repositories on this machine may be read (None: anywhere)
    template_roots: tuple[Path, ...] | None
    # every action family's settings, for the runner that renders the version
    policies: tuple[object, ...]
    repo_dir: Path  # an empty folder for the clone
    work_dir: Path  # the render's own work folder


class ScaffoldService(Protocol):
    """Records scaffolds and computes their updates (``falsework.updates``)."""

    async def record(
        self, git_dir: Path, git: GitPolicy, what: ScaffoldRecord
    ) -> tuple[str, dict[str, Any]]:
        """The commit on top of ``what.pristine`` (in ``git_dir``) that adds the
        scaffold state file, and the step's ``scaffold`` output."""
        ...

    async def update(self, request: UpdateRequest, logger: StepLogger) -> dict[str, Any]:
        """Fetch, render, merge, commit and push the update's branch; its outputs
        (``upToDate``, ``fromVersion``, ``version``, ``scaffold``, and when not up
        to date ``branch``, ``base``, ``commit``, ``conflicts``, ``title``,
        ``description``)."""
        ...


def scaffold_key(remote: str, branch: str) -> str:
    """How a scaffolded repository is named in the server's list: its remote
    (credentials removed) and branch."""
    from falsework.actions.git import redact_urls  # only when a scaffold is recorded

    return f"{redact_urls(remote)}#{branch}"


def update_branch(template_ref: str, version: str) -> str:
    """The branch an update to ``version`` of ``template_ref`` is pushed as."""
    name = template_ref.rsplit("/", 1)[-1] or "template"
    part = _BRANCH_PART.sub("-", f"{name}-{version}").strip("-.") or "update"
    return UPDATE_PREFIX + part.replace("..", ".")


def unavailable(what: str) -> str:
    """The message of a scaffold action run by a registry without the service."""
    return (
        f"{what}: this runner has no scaffold service (falsework.updates); build its "
        "action registry with falsework.wiring.action_policies"
    )
