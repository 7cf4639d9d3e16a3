"""`falsework run` through the quick door as the process's entry (a script whose
last line is ``sys.exit(main())``, as the ``falsework`` script) leaves without the
interpreter's teardown (``quickrun._leave``), and keeps everything else of its
exit: the exit code, every line on stdout and stderr, the threads it waits for,
the ``atexit`` functions. Called by other code (a script that goes on after it,
``python -c``), ``main`` exits as always: that code may go on after it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import EXAMPLES

HELLO = EXAMPLES / "hello-world"

# The process as the `falsework` script starts it (its __main__ holds `main`),
# with an atexit function, a thread still running when the command ends, and an
# object destroyed only by the interpreter's teardown, each leaving a mark.
ENTRY = """
import atexit, os, sys, threading, time
from falsework.cli.main import main

marks = os.environ['MARKS']

def mark(name):
    with open(os.path.join(marks, name), 'w') as f:
        f.write('x')

class Torn:
    path = os.path.join(marks, 'teardown')

    def __del__(self, open=open):  # what it needs, kept past the modules' teardown
        with open(self.path, 'w') as f:
            f.write('x')

kept = Torn()
atexit.register(mark, 'atexit')

def late():
    time.sleep(0.3)
    mark('thread')

threading.Thread(target=late).start()
sys.argv = ['falsework', *sys.argv[1:]]
sys.exit(main())
"""
# the same, called by code that goes on after it
EMBEDDED = ENTRY.replace(
    "sys.exit(main())",
    "try:\n    main()\nexcept SystemExit as exc:\n    print('went on', exc.code)\n"
    "    sys.exit(exc.code)",
)

# the entry with logs written through FileHandlers while the command runs (a
# thread) and at its exit (an atexit function): one handler that writes each
# record as it comes, one behind a MemoryHandler that holds them all until
# logging's own atexit function closes it
LINES = 3000
LOGGED = ENTRY.replace(
    "sys.argv = ",
    f"""import logging, logging.handlers

def to_file(name, buffered):
    handler = logging.FileHandler(os.path.join(marks, name + '.log'))
    if buffered:
        handler = logging.handlers.MemoryHandler(10 ** 6, target=handler)
    log = logging.getLogger(name)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log

logs = [to_file('direct', False), to_file('buffered', True)]

def chatter():
    for n in range({LINES}):
        for log in logs:
            log.info('line %d', n)
        if n % 100 == 0:
            time.sleep(0.01)

threading.Thread(target=chatter).start()
atexit.register(lambda: [log.info('last') for log in logs])
sys.argv = """,
)


def _run(code: str, argv: list[str], tmp_path: Path) -> tuple[int, str, str, set[str]]:
    marks = tmp_path / "marks"
    marks.mkdir(parents=True)
    env = {**os.environ, "MARKS": str(marks), "FALSEWORK_DATA_DIR": str(tmp_path / ".fw")}
    for name in ("FALSEWORK_CONFIG", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    script = tmp_path / "falsework-script"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout, done.stderr, {p.name for p in marks.iterdir()}


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["run", str(HELLO), "--set", "name=x", "-o", "out"], 0),
        (["run", str(HELLO), "--set", "name=x", "--dry-run"], 0),
        (["run", "template:default/nope"], 2),
    ],
)
def test_the_entry_exits_as_embedded_code_does_but_for_the_teardown(
    tmp_path: Path, argv: list[str], code: int
) -> None:
    entry = _run(ENTRY, argv, tmp_path / "entry")
    embedded = _run(EMBEDDED, argv, tmp_path / "embedded")
    assert entry[0] == embedded[0] == code
    assert entry[1] + f"went on {code}\n" == embedded[1]
    assert entry[2] == embedded[2]
    assert embedded[3] == {"atexit", "thread", "teardown"}
    # the thread was waited for, the atexit function ran; nothing was torn down
    assert entry[3] == {"atexit", "thread"}


def test_a_failed_step_exits_1_with_its_message(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "template.yaml").write_text(
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\n"
        "metadata: {name: t}\nspec:\n  steps:\n"
        "    - {id: f, name: F, action: fetch:plain, input: {url: ./nowhere}}\n"
    )
    code, _, err, marks = _run(ENTRY, ["run", str(folder)], tmp_path)
    assert code == 1 and "Failed:" in err
    assert marks == {"atexit", "thread"}


def test_the_collector_runs_again_after_the_imports(tmp_path: Path) -> None:
    # the quick door collects nothing while it imports, then leaves the collector
    # on; it sets what it imported apart (frozen) only as the process's entry
    report = "print('gc', gc.isenabled(), gc.get_freeze_count() > 1000, flush=True)"
    entry = ENTRY.replace("import atexit,", "import gc, atexit,")
    entry = entry.replace("atexit.register(mark, 'atexit')", f"atexit.register(lambda: {report})")
    embedded = EMBEDDED.replace("import atexit,", "import gc, atexit,")
    embedded = embedded.replace("    print('went on', exc.code)", f"    {report}")
    argv = ["run", str(HELLO), "--set", "name=x", "-o", "out"]
    code, out, err, _ = _run(entry, argv, tmp_path / "entry")
    assert code == 0, err
    assert "gc True True" in out.splitlines()
    code, out, err, _ = _run(embedded, argv, tmp_path / "embedded")
    assert code == 0, err
    assert "gc True False" in out.splitlines()


def test_logs_written_through_file_handlers_are_complete_after_the_exit(tmp_path: Path) -> None:
    # what a thread logged during the run and an atexit function at its end is in
    # the files, in order, also what a MemoryHandler held until logging shut down
    code, _, err, marks = _run(
        LOGGED, ["run", str(HELLO), "--set", "name=x", "-o", "out"], tmp_path
    )
    assert code == 0, err
    lines = [f"line {n}" for n in range(LINES)] + ["last"]
    for name in ("direct", "buffered"):
        assert (tmp_path / "marks" / f"{name}.log").read_text().splitlines() == lines, name
    assert marks == {"atexit", "thread", "direct.log", "buffered.log"}
