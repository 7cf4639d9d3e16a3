"""What the edges (the CLI commands, the app factory) build from ``Settings``: the
engine's option objects (with the runner's words for the final events) and the
runner with its limits and its configured actions.

Neither the engine nor the runner reads the configuration; this module is where
``Settings`` becomes their plain values.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeAlias

from falsework.actions import ActionRegistry
from falsework.runner import BACKSTAGE, DefaultEnvironment, WorkflowRunner
from falsework.runner.limits import RunLimits
from falsework.settingtable import options_of
from falsework.templating import Renderer

if TYPE_CHECKING:
    # imported where they are built: `falsework run` needs the runner, not the
    # engine's drivers (SQLAlchemy, asyncpg, Alembic: ~0.6 s of start-up), nor
    # pydantic-settings (falsework.localconfig reads its settings)
    from falsework import webhooks
    from falsework.config import Settings
    from falsework.engine import Broker, BrokerOptions, StoreOptions, WorkerOptions
    from falsework.engine.options import RetentionOptions
    from falsework.localconfig import LocalSettings


# Each option object takes the settings of its fields' names (settingtable.options_of);
# given here: the fields named otherwise, derived, or not settings at all.
def broker_options(settings: Settings) -> BrokerOptions:
    from falsework.engine import BrokerOptions
    from falsework.engine.crypto import KEY_FILE

    return options_of(
        BrokerOptions,
        settings,
        wording=BACKSTAGE,
        key_file=settings.data_dir / KEY_FILE,
        max_open_per_user=settings.max_open_tasks_per_user,
        worker_stale_after=settings.stale_timeout,
        store=store_options(settings),
    )


def store_options(settings: Settings) -> StoreOptions:
    from falsework.engine import StoreOptions

    return options_of(
        StoreOptions,
        settings,
        "db_",
        statement_timeout=settings.db_statement_timeout or settings.stale_timeout / 3,
        announce_finishes=bool(settings.webhooks),
    )


def worker_options(settings: Settings) -> WorkerOptions:
    from falsework.engine import WorkerOptions

    return options_of(
        WorkerOptions,
        settings,
        lease=settings.lease or settings.stale_timeout * 2 / 3,
        lease_margin=settings.lease_margin or settings.stale_timeout * 2 / 15,
        retention=retention_options(settings),
    )


def retention_options(settings: Settings) -> RetentionOptions:
    from falsework.engine.options import RetentionOptions

    return options_of(RetentionOptions, settings, "retention_")


async def open_broker(settings: Settings) -> Broker:
    """The broker of ``settings``' database (migrated, its listener started)."""
    from falsework.engine import Broker

    return await Broker.open(settings.resolved_database_url, broker_options(settings))


# What the runner reads of the settings: ``Settings``, or for ``falsework run`` the
# ``LocalSettings`` read without pydantic; both hold every scalar setting
# (falsework.settingtable) and give resolved_work_dir, default_environment() and
# action_policies().
RunnerSettings: TypeAlias = "Settings | LocalSettings"


def run_limits(settings: RunnerSettings) -> RunLimits:
    return options_of(RunLimits, settings)


def action_policies(settings: RunnerSettings, *, local: bool = False) -> tuple[object, ...]:
    """The action families' settings (``Settings.action_policies``), the scaffold
    actions' given the scaffold service of template updates (which render through
    the runner, above the actions: so it is handed over here, not imported)."""
    from falsework.actions.policies import PublishPolicy, UpdatePolicy
    from falsework.updates.service import ScaffoldUpdates

    scaffolds = ScaffoldUpdates()
    return tuple(
        dataclasses.replace(policy, scaffolds=scaffolds)
        if isinstance(policy, PublishPolicy | UpdatePolicy)
        else policy
        for policy in settings.action_policies(local=local)
    )


def workflow_runner(
    settings: RunnerSettings, *, registry: ActionRegistry | None = None, local: bool = False
) -> WorkflowRunner:
    """The runner of a server (or, with ``local``, of ``falsework run``): the
    default registry, its action families configured from ``settings``
    (``action_policies``) unless a ``registry`` is given. The settings of a
    plain local run (``LocalSettings``) build those only when an action that
    takes them is first used: building them reads nothing and cannot fail."""
    from falsework.localconfig import LocalSettings

    if isinstance(settings, LocalSettings):
        policies: Any = lambda: action_policies(settings, local=local)  # noqa: E731
    else:
        policies = action_policies(settings, local=local)
    return WorkflowRunner(
        registry or ActionRegistry.default(policies),
        Renderer(timeout=settings.render_timeout, max_output=settings.render_max_output),
        step_timeout=settings.step_timeout,
        work_dir=settings.resolved_work_dir,
        keep_workspace_on_failure=settings.keep_workspace_on_failure,
        limits=run_limits(settings),
        environment=DefaultEnvironment(*settings.default_environment()),
    )


def webhook_services(
    settings: Settings, broker: Broker
) -> tuple[webhooks.Dispatcher, webhooks.Deliveries]:
    """The webhooks of ``settings`` on ``broker``: the outbox's dispatcher (run it
    beside the worker) and the deliveries (wrap the worker's executor)."""
    from falsework import webhooks
    from falsework.actions.policies import EgressPolicy

    egress = EgressPolicy.from_lists(settings.egress.allow, settings.egress.deny)
    dispatcher = webhooks.Dispatcher(broker, settings.webhooks, interval=settings.janitor_interval)
    deliveries = webhooks.Deliveries(
        broker,
        settings.webhooks,
        egress,
        timeout=settings.webhook_timeout,
        max_tries=settings.webhook_max_tries,
        retry_base=settings.webhook_retry_base,
        retry_max=settings.webhook_retry_max,
    )
    return dispatcher, deliveries
