"""The ``falsework`` command: each module under ``cli/`` registers its commands."""

from __future__ import annotations

import typer

from falsework.cli import actions, db, run, serve, tasks, templates, worker, workers

app = typer.Typer(
    name="falsework",
    help="Backstage-compatible Software Templates on a durable task engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for module in (db, worker, workers, templates, actions, run, serve, tasks):
    module.register(app)


def main() -> None:
    app()
