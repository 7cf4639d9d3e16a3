"""The ``falsework`` command: each module under ``cli/`` registers its commands.

A module is imported only when its command runs (or its own ``--help`` is asked
for): ``falsework --help`` lists the commands from the table below, so it starts
without the server stack, the engine or the actions. A test keeps the table's
help texts equal to the commands' own.

``falsework run`` with no terminal anywhere (a script, CI) does not need Typer,
Click or Rich at all: ``main`` hands it to ``cli/quickrun.py`` first, which runs
it or, for anything it does not read exactly as Typer would, declines.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# command -> (module whose register() adds it, its one-line help), in listing order
COMMANDS: dict[str, tuple[str, str]] = {
    "worker": (
        "falsework.cli.worker",
        "Claim and run tasks; SIGTERM/SIGINT stops claiming, drains, and exits 0.",
    ),
    "run": (
        "falsework.cli.run",
        "Run a template's steps here and now, writing the result to --output.",
    ),
    "serve": (
        "falsework.cli.serve",
        "Serve the scaffolder API, the page and a worker; SIGTERM drains and exits 0.",
    ),
    "db": ("falsework.cli.db", "The engine's database."),
    "workers": ("falsework.cli.workers", "The running workers."),
    "templates": ("falsework.cli.templates", "Validate and list Software Templates."),
    "actions": ("falsework.cli.actions", "The actions templates can use."),
    "tasks": ("falsework.cli.tasks", "List, follow, cancel and retry tasks on a server."),
    "update": (
        "falsework.cli.update",
        "Update a clone to a newer version of its template, merged 3-way.",
    ),
}


def load(name: str) -> Any:
    """The real command ``name`` (a Typer command or group): its module imported
    and registered."""
    import typer
    from typer.core import TyperGroup

    module = importlib.import_module(COMMANDS[name][0])
    # help text is plain text: "gh:OWNER/REPO[/PATH]" is not Rich markup
    holder = typer.Typer(rich_markup_mode=None)
    holder.callback()(_nothing)  # a group, even when the module adds one command
    module.register(holder)
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


def _nothing() -> None:
    pass


def _build() -> Any:
    """The Typer application (Typer imported only now)."""
    import typer
    from typer.core import TyperCommand, TyperGroup

    class _LazyGroup(TyperGroup):
        """Lists the commands from ``COMMANDS``; imports one only to run it."""

        _listing = False

        def list_commands(self, ctx: Any) -> list[str]:
            return list(COMMANDS)

        def get_command(self, ctx: Any, cmd_name: str) -> Any:
            if cmd_name not in COMMANDS:
                return None
            if self._listing:
                short = COMMANDS[cmd_name][1]
                return TyperCommand(cmd_name, help=short, short_help=short)
            return load(cmd_name)

        def format_help(self, ctx: Any, formatter: Any) -> None:
            self._listing = True
            try:
                super().format_help(ctx, formatter)
            finally:
                self._listing = False

    app = typer.Typer(
        name="falsework",
        cls=_LazyGroup,
        help="Backstage-compatible Software Templates on a durable task engine.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def _root() -> None:
        """Backstage-compatible Software Templates on a durable task engine."""

    return app


_app: Any = None


def __getattr__(name: str) -> Any:
    # ``app``, the Typer application, built on first use
    global _app
    if name == "app":
        if _app is None:
            _app = _build()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    from falsework.errors import SettingsError

    try:
        if sys.argv[1:2] == ["run"]:
            from falsework.cli import quickrun

            # exits when it ran the command
            quickrun.attempt(sys.argv[2:], last=_is_entry())
        __getattr__("app")()
    except SettingsError as exc:  # a command that reads the settings without catching
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _is_entry() -> bool:
    """Whether ``main`` is the process's entry and after it comes only the
    interpreter's exit: ``__main__`` is a script holding this very function whose
    last line is ``sys.exit(main())``, as the ``falsework`` script pip or uv
    writes. Not when other code calls it (a test, ``python -c``, a program
    embedding the command), which may go on after it exits."""
    script = sys.modules.get("__main__")
    path = getattr(script, "__file__", None)
    if getattr(script, "main", None) is not main or not isinstance(path, str):
        return False
    try:
        with open(path, encoding="utf-8") as file:
            source = file.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return source.rstrip().endswith("sys.exit(main())")


if __name__ == "__main__":
    main()
