"""The settings of the action families, as frozen values built once at the edge
(``Settings.action_policies()`` for a server, ``local=True`` for ``falsework run``)
and handed to the registry, which gives each action the one its family declares
(``@action(settings=…)``). A handler sees them next to its per-run context; they
never travel through a task's run.

Each has safe defaults, so a registry built without them (a test, a plugin host)
reads only the task's own template folder, publishes nowhere on disk, and reaches
no loopback, private or metadata address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from falsework.actions.egress import EgressPolicy
from falsework.actions.git import GitCredential, GitPolicy
from falsework.actions.integrations import Integrations
from falsework.actions.scaffolding import ScaffoldService


@dataclass(frozen=True)
class SourcePolicy:
    """Where ``fetch:*`` may read: local folders and repositories under ``roots``
    (on a server, the template folders; the task's own template folder always),
    and git remotes as ``git`` allows."""

    roots: tuple[Path, ...] = ()
    git: GitPolicy = field(default_factory=GitPolicy)


@dataclass(frozen=True)
class PublishPolicy:
    """Where ``publish:git`` may push: local repositories inside ``remotes_dir``
    (where a relative remote path lands) or under ``roots``, and git remotes as
    ``git`` allows. ``scaffolds`` records a scaffold (``scaffold: true``): the
    edge gives falsework.updates's (``falsework.wiring.action_policies``)."""

    remotes_dir: Path | None = None
    roots: tuple[Path, ...] = ()
    git: GitPolicy = field(default_factory=GitPolicy)
    scaffolds: ScaffoldService | None = None


@dataclass(frozen=True)
class UpdatePolicy:
    """What ``scaffold:update`` may do: push where publish:git may (``publish``),
    open pull requests on the configured forges (``integrations``), read template
    repositories on this machine only under ``template_roots`` (a server's template
    folders; ``None``: anywhere, for ``falsework run``), and render a template
    version with the actions configured by ``policies`` (every family's settings),
    through ``scaffolds`` (falsework.updates's, given at the edge)."""

    publish: PublishPolicy = field(default_factory=PublishPolicy)
    integrations: Integrations = field(default_factory=Integrations)
    template_roots: tuple[Path, ...] | None = ()
    policies: tuple[object, ...] = ()
    # updates computed at once in one process (each renders a repository and runs
    # a few dozen git commands: more at once only starve the worker's heartbeats)
    parallel: int = 2
    scaffolds: ScaffoldService | None = None


__all__ = [
    "EgressPolicy",
    "GitCredential",
    "GitPolicy",
    "PublishPolicy",
    "ScaffoldService",
    "SourcePolicy",
    "UpdatePolicy",
]
