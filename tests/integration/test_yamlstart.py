"""falsework.yamlstart: PyYAML's pattern of refused characters, seeded in ``re``'s
cache before PyYAML is imported, finds exactly what PyYAML's own finds."""

from __future__ import annotations

import re
import subprocess
import sys

from falsework import yamlstart


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_the_seeded_pattern_refuses_the_same_code_points_as_pyyaml() -> None:
    every = "".join(map(chr, range(0x110000)))  # lone surrogates too
    # re.UNICODE: another cache key than PyYAML's, so its own text is compiled here
    theirs = re.compile(yamlstart.PYYAML, re.UNICODE)
    ours = re.compile(yamlstart.REFUSED)
    refused = [m.start() for m in theirs.finditer(every)]
    assert refused == [m.start() for m in ours.finditer(every)]
    assert 0x09 not in refused and 0x0B in refused and 0xFFFE in refused


def test_pyyaml_still_writes_the_pattern_seeded_for_it() -> None:
    # yaml first: its own compile, before falsework/__init__ seeds anything
    code = "import yaml.reader as r; from falsework import yamlstart as s; "
    code += "print(r.Reader.NON_PRINTABLE.pattern == s.PYYAML)"
    assert _python(code) == "True"


def test_pyyaml_imported_after_falsework_takes_the_seeded_pattern() -> None:
    code = "import falsework, yaml.reader as r; from falsework import yamlstart as s; "
    code += "print(r.Reader.NON_PRINTABLE.pattern == s.REFUSED)"
    assert _python(code) == "True"


def test_a_refused_character_is_reported_as_pyyaml_reports_it() -> None:
    read = "import yaml\ntry:\n    yaml.safe_load('a: b\\n c: \\x07d')\n"
    read += "except yaml.YAMLError as exc:\n    print(exc)\n"
    plain = _python(read)
    assert "#x0007" in plain and "position 9" in plain
    assert _python("import falsework\n" + read) == plain
