"""Each test helper is written once (tests/support): the repository's root is
``support.paths.REPO`` (bench: ``bench.common.REPO_ROOT``), not a
``Path(__file__).parents[N]`` per module; the loopback server that never answers
is ``support.silent.Silent``; a `falsework serve` for a test is
``support.servers.start_server``."""

from __future__ import annotations

import re

from support.paths import REPO, TESTS

ROOT_FROM_FILE = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?\.parents\[\d\]|HERE\.parents\[")
# support/compat/record.py runs as a script: it finds tests/ before it can import support
ALLOWED = {TESTS / "support" / "paths.py", TESTS / "support" / "compat" / "record.py"}


def _sources() -> list[tuple[str, str]]:
    files = sorted([*TESTS.rglob("*.py"), *(REPO / "bench").rglob("*.py")])
    return [(str(p.relative_to(REPO)), p.read_text(encoding="utf-8")) for p in files]


def test_the_repository_root_is_one_constant() -> None:
    found = [
        name
        for name, text in _sources()
        if ROOT_FROM_FILE.search(text) and REPO / name not in ALLOWED
    ]
    assert found == [], "use support.paths (tests) or bench.common.REPO_ROOT (bench)"


def test_one_silent_server_and_one_serve_helper() -> None:
    silent = [name for name, text in _sources() if re.search(r"^class Silent\b", text, re.M)]
    assert silent == ["tests/support/silent.py"]
    popen_serve = re.compile(r'\[\s*str\(FALSEWORK\),\s*"serve",\s*"--host"')
    serving = [name for name, text in _sources() if popen_serve.search(text)]
    # servers.start_server, and the fault lab's own cluster of nodes
    assert serving == ["tests/support/faultlab.py", "tests/support/servers.py"]
