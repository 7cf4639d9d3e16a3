"""`falsework run` without Typer, Click or Rich, for the scripted case (issue 17).

Typer, Click, Rich and the pydantic Typer brings took half the start of a local
run. When no terminal is involved (stdin, stdout and stderr all pipes or files,
nothing forcing colour), Rich prints plain lines and nothing is asked, so this
front door reads the command line itself and prints those lines itself; the run
is ``runlocal.run_local``, the same code as the Typer command's.

It reads only what it can read exactly as Click would: one template argument and
``--set``/``--secret`` (repeatable), ``--values``, ``--output``/``-o``,
``--dry-run`` and ``--defaults``, each value in the next word or after ``=``
(``-oDIR`` too). Anything else (``--help``, an unknown or incomplete option, a
value that starts with ``-``, two templates, a terminal, shell completion) and
``attempt`` returns, leaving the command to Typer, whose messages and exit codes
are then the ones given. A test holds both front doors' output equal.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple, TextIO

# options taking a value: their names -> the field they fill
_VALUED = {
    "--set": "sets",
    "--secret": "secrets",
    "--values": "values_file",
    "--output": "output",
    "-o": "output",
}
_FLAGS = {"--dry-run": "dry_run", "--defaults": "defaults"}
_REPEATED = {"sets", "secrets"}
# Rich treats the streams as a terminal when one of these is set
_TERMINAL_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


class Args(NamedTuple):
    template: str
    sets: list[str]
    secrets: list[str]
    values_file: Path | None
    output: Path | None
    dry_run: bool


def parse(argv: list[str]) -> Args | None:
    """The arguments of ``falsework run`` (the words after ``run``), or None when
    they are not all plainly ones this front door reads as Click would."""
    found: dict[str, Any] = {"sets": [], "secrets": []}
    templates: list[str] = []
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):
            templates.append(word)
            continue
        name, eq, value = word.partition("=")
        if name in _FLAGS and not eq:
            found[_FLAGS[name]] = True
            continue
        if name.startswith("--"):
            if name not in _VALUED:
                return None
            if not eq:
                value = next(words, "")
        elif word.startswith("-o"):
            name, value = "-o", word[2:] or next(words, "")
        else:
            return None
        if not value or value.startswith("-"):
            return None
        field = _VALUED[name]
        if field in _REPEATED:
            found[field].append(value)
        else:
            found[field] = Path(value)
    if len(templates) != 1:
        return None
    return Args(
        template=templates[0],
        sets=found["sets"],
        secrets=found["secrets"],
        values_file=found.get("values_file"),
        output=found.get("output"),
        dry_run=found.get("dry_run", False),
    )


def _no_terminal() -> bool:
    """Whether Rich would print plain text on both streams and nothing is asked."""
    if any(name in os.environ for name in _TERMINAL_ENV):
        return False
    if any(name.endswith("_COMPLETE") for name in os.environ):
        return False  # Click's shell completion
    streams = (sys.stdin, sys.stdout, sys.stderr)
    return all(s is not None and not s.isatty() for s in streams)


class PlainPrinter:
    """Prints lines as Rich prints them off a terminal (no colour, no wrapping):
    text of printable characters and line breaks as it is, an ANSI piece
    without its colour escapes; any other text (other escapes, tabs, control
    characters, an ANSI piece ending in a line break, which Rich before 15
    drops and 15 keeps) through Rich."""

    def __init__(self, stream: TextIO, stderr: bool) -> None:
        self.stream = stream
        self.stderr = stderr
        self.rich: Any = None

    def line(self, *pieces: tuple[str, str]) -> None:
        from falsework.cli.runlocal import ANSI

        # (an ANSI piece's last line break: Rich before 15 drops it, 15 keeps it)
        if not all(
            _plain(p) if s != ANSI else _plain(_SGR.sub("", p)) and not p.endswith("\n")
            for p, s in pieces
        ):
            self._through_rich(pieces)
            return
        text = "".join(_SGR.sub("", piece) if style == ANSI else piece for piece, style in pieces)
        self.stream.write(text + "\n")
        self.stream.flush()

    def _through_rich(self, pieces: tuple[tuple[str, str], ...]) -> None:
        if self.rich is None:
            from falsework.cli.output import console
            from falsework.cli.runlocal import RichPrinter

            self.rich = RichPrinter(console(stderr=self.stderr))
        self.rich.line(*pieces)


# colours and text styles: what Rich reads from an ANSI piece and, off a
# terminal, leaves out (any other escape goes through Rich)
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def _plain(text: str) -> bool:
    # printable characters and line breaks only, and short of Rich's width
    return len(text) < 50_000 and all(line.isprintable() for line in text.split("\n"))


def attempt(argv: list[str], *, last: bool = False) -> None:
    """Run ``falsework run ARGV`` and exit, or return when Typer should. ``last``:
    nothing of the process runs after this but the interpreter's exit (``main`` is
    the process's entry), so it may leave without tearing down (``_leave``)."""
    args = parse(argv)
    if args is None or not _no_terminal():
        return
    # The imports (~360 modules) make objects that live as long as the process:
    # no garbage collection while they are made, and, when nothing but the exit
    # follows (``last``), they are set apart from later collections (frozen),
    # which go on as usual: the collector's passes over them were 30 M of the
    # 887 M instructions of hello-world's run (issue 17).
    import gc

    gc.disable()
    try:
        from falsework.cli.runlocal import run_local
    finally:
        if last:
            gc.freeze()
        gc.enable()

    try:
        code = run_local(
            args.template,
            values_file=args.values_file,
            sets=args.sets,
            secrets=args.secrets,
            output=args.output,
            dry_run=args.dry_run,
            out=PlainPrinter(sys.stdout, stderr=False),
            err=PlainPrinter(sys.stderr, stderr=True),
        )
    except (EOFError, KeyboardInterrupt):
        # as Click's standalone mode
        sys.stderr.write("\nAborted!\n")
        sys.stderr.flush()
        code = 1
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        sys.stdout = _Quiet(sys.stdout)
        sys.stderr = _Quiet(sys.stderr)
        code = 1
    if last:
        _leave(code)
    raise SystemExit(code)


def _leave(code: int) -> None:
    """Exit with ``code`` as the interpreter would, in its order, without its
    teardown: the threads it waits for joined (``threading._shutdown``, the
    render pool's among them), the ``atexit`` functions run (``weakref.finalize``
    ones too), stdout and stderr flushed; then not the destruction of every
    module and object (some 360 modules, pydantic's and Jinja's among them: 67 M
    of the 955 M instructions of ``falsework run`` of hello-world, issue 17).
    Returns, for the usual exit, when this Python lacks either private hook or
    flushing fails (the interpreter then says so as it always has)."""
    import atexit
    import threading

    join_threads = getattr(threading, "_shutdown", None)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if join_threads is None or run_exitfuncs is None:
        return
    join_threads()
    run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


class _Quiet:
    """A stream whose flush ignores a closed pipe (as Click's on EPIPE)."""

    def __init__(self, wrapped: TextIO) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        try:
            self.wrapped.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)
