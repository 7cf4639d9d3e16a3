"""How the commands print: colour, tables and progress on a terminal; plain lines
that fit pipes and files otherwise.

Piped or redirected (``falsework tasks logs ID > file``, ``| grep``), output has no
ANSI codes (unless ``FORCE_COLOR`` is set), no hard wrapping at 80 columns and no
trailing spaces. Text that comes from elsewhere (a log message, a regex in an
error, a template's title) is never read as Rich markup: ``[a-z]`` stays ``[a-z]``.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

__all__ = ["console", "escape", "plain", "print_json", "print_table"]

# Wide enough that nothing a command prints is wrapped when not on a terminal.
_PIPE_WIDTH = 100_000


def console(*, stderr: bool = False) -> Console:
    """A console for stdout (or stderr): Rich's on a terminal, plain otherwise."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=_PIPE_WIDTH)


def plain(text: str, style: str = "") -> Text:
    """``text`` shown as it is (never parsed as markup), in ``style`` on a terminal."""
    return Text(text, style=style)


def print_table(out: Console, table: Table) -> None:
    """A table: as Rich draws it on a terminal; off one, its lines without the
    padding Rich adds at their ends, however wide they are."""
    if out.is_terminal:
        out.print(table)
        return
    with out.capture() as captured:
        out.print(table)
    lines = [line.rstrip() for line in captured.get().splitlines()]
    out.file.write("".join(f"{line}\n" for line in lines))
    out.file.flush()


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (never coloured, never wrapped)."""
    print(json.dumps(data, indent=2, default=str))
