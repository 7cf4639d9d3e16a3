"""The scaffold service the scaffold actions are given (``ScaffoldService`` of
``falsework.actions.scaffolding``): publish:git's ``scaffold: true`` records
through it, scaffold:update renders, merges and pushes through it. The edge
(``falsework.wiring.action_policies``) builds it and hands it to the two action
families; the actions never import this package."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falsework.actions.scaffolding import (
    PRISTINE_BRANCH,
    UPDATE_KIND,
    UPDATE_PREFIX,
    scaffold_key,
    update_branch,
)
from falsework.errors import ActionError

if TYPE_CHECKING:
    from falsework.actions.context import StepLogger
    from falsework.actions.git import GitPolicy
    from falsework.actions.scaffolding import ScaffoldRecord, UpdateRequest
    from falsework.runner import WorkflowRunner

# The methods import the merge machinery (updates.update, .record, .gitrepo) when
# called: every local run builds this service, few record or update a scaffold.


@dataclass(frozen=True)
class ScaffoldUpdates:
    """Template updates, as the scaffold actions ask for them."""

    async def record(
        self, git_dir: Path, git: GitPolicy, what: ScaffoldRecord
    ) -> tuple[str, dict[str, Any]]:
        from falsework.updates import record as recording
        from falsework.updates.gitrepo import Author, Repo

        source = await recording.template_source(git, what.template_dir, what.template_repository)
        repo = Repo(git_dir, git, author=Author(what.author_name, what.author_email))
        commit, state = await recording.record(
            repo,
            what.pristine,
            source,
            answers=what.answers,
            secrets=what.secrets,
            step=what.step,
            source_path=what.source_path,
        )
        record = {"templateRef": source.ref, "version": source.version, "state": state.to_json()}
        return commit, record

    async def update(self, request: UpdateRequest, logger: StepLogger) -> dict[str, Any]:
        from falsework.updates.gitrepo import Repo
        from falsework.updates.update import commit_update, plan_update

        remote, branch = request.remote, request.branch
        repo = await Repo.init_bare(request.repo_dir / "repo.git", request.git)
        refspecs = [
            f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
            f"+refs/heads/{PRISTINE_BRANCH}:refs/remotes/origin/{PRISTINE_BRANCH}",
            f"+refs/heads/{UPDATE_PREFIX}*:refs/remotes/origin/{UPDATE_PREFIX}*",
        ]
        await repo.git("fetch", "-q", "--no-tags", remote.url, *refspecs, remote=remote)
        head = await repo.rev(f"refs/remotes/origin/{branch}")
        if head is None:
            raise ActionError(f"{remote.shown} has no branch {branch!r}")
        tip = await repo.rev(f"refs/remotes/origin/{PRISTINE_BRANCH}")
        plan = await plan_update(
            repo,
            head,
            _runner(request.policies, request.work_dir),
            to=request.to,
            overrides=request.overrides,
            pristine_tip=tip,
            template_roots=request.template_roots,
        )
        result: dict[str, Any] = {
            "upToDate": plan.up_to_date,
            "fromVersion": plan.state.template.version,
            "version": plan.version.name,
            "scaffold": {
                "repository": scaffold_key(request.url, branch),
                "kind": UPDATE_KIND,
                "templateRef": plan.state.template.ref,
                "version": plan.state.template.version,
                "state": plan.state.to_json(),
            },
        }
        if plan.up_to_date:
            logger.info(f"{branch} already has {plan.version.name}: nothing to update")
            return result
        assert plan.pristine is not None
        name = update_branch(plan.state.template.ref, plan.version.name)
        commit = await commit_update(repo, plan)
        existing = await repo.rev(f"refs/remotes/origin/{name}")
        specs = [f"{plan.pristine}:refs/heads/{PRISTINE_BRANCH}"]
        if existing is None:
            specs.append(f"{commit}:refs/heads/{name}")
        elif existing != commit:
            # one update per version: an earlier run's branch (perhaps with the
            # team's resolutions on it) is kept, never replaced
            logger.info(f"Branch {name} exists already ({existing[:12]}): reusing it")
            commit = existing
        await repo.git("push", "-q", remote.url, *specs, remote=remote)
        logger.info(f"Pushed {name} ({commit[:12]}): {plan.title()}")
        if plan.conflicts:
            logger.warning(f"Conflicts in: {', '.join(plan.conflicts)}")
        result["scaffold"]["update"] = {
            "version": plan.version.name,
            "branch": name,
            "commit": commit,
            "conflicts": plan.conflicts,
        }
        return {
            **result,
            "branch": name,
            "base": branch,
            "commit": commit,
            "conflicts": plan.conflicts,
            "title": plan.title(),
            "description": plan.description(),
        }


def _runner(policies: tuple[object, ...], work_dir: Path) -> WorkflowRunner:
    """A runner to rehearse template versions with, its actions configured as
    this server's (the update's own action family is not among them)."""
    from falsework.actions import ActionRegistry
    from falsework.runner import WorkflowRunner
    from falsework.templating import Renderer
    from falsework.updates.render import for_updates

    registry = ActionRegistry.builtin(policies)
    return for_updates(WorkflowRunner(registry, Renderer(), work_dir=work_dir))
