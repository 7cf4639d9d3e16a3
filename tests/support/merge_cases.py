"""The table of template-update merge cases (base, template side, team side,
what git must make of them), shared by test_merge and the copier oracle."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from support.updates import Files

LINES = b"".join(b"line %d\n" % i for i in range(1, 21))


def edit(text: bytes, old: bytes, new: bytes) -> bytes:
    assert old in text
    return text.replace(old, new, 1)


@dataclass
class Case:
    base: Files
    ours: Files
    theirs: Files
    merged: Files  # files the result must hold, exactly (bytes and exec bit)
    absent: tuple[str, ...] = ()
    conflicts: dict[str, str] = field(default_factory=dict)  # path -> conflict kind


CASES: dict[str, Case] = {
    "edits in different hunks merge cleanly": Case(
        base={"app.py": LINES},
        ours={"app.py": edit(LINES, b"line 2\n", b"line 2 team\n")},
        theirs={"app.py": edit(LINES, b"line 18\n", b"line 18 template\n")},
        merged={
            "app.py": edit(
                edit(LINES, b"line 2\n", b"line 2 team\n"), b"line 18\n", b"line 18 template\n"
            )
        },
    ),
    "edits in the same hunk conflict with markers": Case(
        base={"app.py": LINES},
        ours={"app.py": edit(LINES, b"line 10\n", b"line 10 team\n")},
        theirs={"app.py": edit(LINES, b"line 10\n", b"line 10 template\n")},
        merged={
            "app.py": edit(
                LINES,
                b"line 10\n",
                b"<<<<<<< project\nline 10 team\n=======\nline 10 template\n>>>>>>> template-v2\n",
            )
        },
        conflicts={"app.py": "CONFLICT (contents)"},
    ),
    "a file the team deleted and the template kept stays deleted": Case(
        base={"keep": b"k\n", "docs/old.md": b"old\n"},
        ours={"keep": b"k\n"},
        theirs={"keep": b"k2\n", "docs/old.md": b"old\n"},
        merged={"keep": b"k2\n"},
        absent=("docs/old.md",),
    ),
    "deleted by the team, changed by the template: a conflict": Case(
        base={"keep": b"k\n", "ci.yml": b"v1\n"},
        ours={"keep": b"k\n"},
        theirs={"keep": b"k\n", "ci.yml": b"v2\n"},
        merged={"keep": b"k\n", "ci.yml": b"v2\n"},
        conflicts={"ci.yml": "CONFLICT (modify/delete)"},
    ),
    "changed by the team, deleted by the template: a conflict": Case(
        base={"keep": b"k\n", "setup.cfg": b"a\n"},
        ours={"keep": b"k\n", "setup.cfg": b"a team\n"},
        theirs={"keep": b"k\n"},
        merged={"keep": b"k\n", "setup.cfg": b"a team\n"},
        conflicts={"setup.cfg": "CONFLICT (modify/delete)"},
    ),
    "unchanged by the team, deleted by the template: deleted": Case(
        base={"keep": b"k\n", "setup.cfg": b"a\n"},
        ours={"keep": b"k team\n", "setup.cfg": b"a\n"},
        theirs={"keep": b"k\n"},
        merged={"keep": b"k team\n"},
        absent=("setup.cfg",),
    ),
    "both add the same path with the same bytes: clean": Case(
        base={"keep": b"k\n"},
        ours={"keep": b"k\n", "LICENSE": b"MIT\n"},
        theirs={"keep": b"k\n", "LICENSE": b"MIT\n"},
        merged={"keep": b"k\n", "LICENSE": b"MIT\n"},
    ),
    "both add the same path with different bytes: add/add": Case(
        base={"keep": b"k\n"},
        ours={"keep": b"k\n", "Makefile": b"team\n"},
        theirs={"keep": b"k\n", "Makefile": b"template\n"},
        merged={
            "keep": b"k\n",
            "Makefile": b"<<<<<<< project\nteam\n=======\ntemplate\n>>>>>>> template-v2\n",
        },
        conflicts={"Makefile": "CONFLICT (contents)"},
    ),
    "the template renames a file the team edited: the edit follows": Case(
        base={"src/main.py": LINES},
        ours={"src/main.py": edit(LINES, b"line 3\n", b"line 3 team\n")},
        theirs={"app/main.py": LINES},
        merged={"app/main.py": edit(LINES, b"line 3\n", b"line 3 team\n")},
        absent=("src/main.py",),
    ),
    "the template makes a script executable, the team edited it": Case(
        base={"run.sh": b"#!/bin/sh\necho a\n"},
        ours={"run.sh": b"#!/bin/sh\necho a\necho team\n"},
        theirs={"run.sh": (b"#!/bin/sh\necho a\n", True)},
        merged={"run.sh": (b"#!/bin/sh\necho a\necho team\n", True)},
    ),
    "a binary file changed by the template only": Case(
        base={"logo.png": b"\x89PNG\x00\x01"},
        ours={"logo.png": b"\x89PNG\x00\x01", "x": b"team\n"},
        theirs={"logo.png": b"\x89PNG\x00\x02"},
        merged={"logo.png": b"\x89PNG\x00\x02", "x": b"team\n"},
    ),
    "a binary file changed by both: a conflict keeping the team's": Case(
        base={"logo.png": b"\x89PNG\x00\x01"},
        ours={"logo.png": b"\x89PNG\x00\x03"},
        theirs={"logo.png": b"\x89PNG\x00\x02"},
        merged={"logo.png": b"\x89PNG\x00\x03"},
        conflicts={"logo.png": "CONFLICT (binary)"},
    ),
}


def contents(git_dir: Path, tree: str) -> dict[str, tuple[bytes, bool]]:
    def git(*args: str) -> bytes:
        return subprocess.run(
            ["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True
        ).stdout

    found: dict[str, tuple[bytes, bool]] = {}
    for line in git("ls-tree", "-r", "-z", tree).split(b"\0"):
        if not line:
            continue
        meta, path = line.split(b"\t", 1)
        mode, _, blob = meta.decode().split(" ")
        found[path.decode()] = (git("cat-file", "blob", blob), mode == "100755")
    return found
