"""The tests' tiers, read from their source (an AST test, cheap enough for every run).

- ``tests/unit``: no I/O beyond local files: no database, no subprocess, no
  network, no git; it imports nothing that does, and asks for no fixture that does.
- ``tests/integration``: real databases, git and loopback HTTP, in this process;
  no ``falsework serve`` process, no CLI process, no browser, no chaos.
- ``tests/acceptance``: everything else (real processes, Chromium, faults).

Every test file lives in one of them; tests/support holds helpers and data only.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.paths import TESTS

TIERS = ("unit", "integration", "acceptance")

# Modules that do I/O the unit tier may not do (a prefix matches its submodules).
UNIT_FORBIDDEN_IMPORTS = (
    "subprocess",
    "socket",
    "http.server",
    "urllib.request",
    "httpx",
    "psycopg",
    "aiosqlite",
    "uvicorn",
    "pexpect",
    "playwright",
    "falsework.engine.factory",
    "support.argo",
    "support.backstage_catalog",
    "support.chaos",
    "support.engine",
    "support.faultlab",
    "support.forge",
    "support.githttp",
    "support.gitrepos",
    "support.pgbouncer",
    "support.receiver",
    "support.recorder",
    "support.serve",
    "support.servers",
    "support.silent",
    "support.templates_test",
    "support.updates",
)
# Calls that open a connection or start a process even from an allowed module.
UNIT_FORBIDDEN_CALLS = {
    "asyncpg.connect",
    "asyncpg.create_pool",
    "sqlite3.connect",
    "asyncio.create_subprocess_exec",
    "asyncio.create_subprocess_shell",
    "asyncio.open_connection",
    "asyncio.start_server",
    "os.system",
    "os.popen",
    "open_store",
}
# Fixtures that hand a test a database, a server, a browser or a git repository.
UNIT_FORBIDDEN_FIXTURES = {
    "argo",
    "broker",
    "browser",
    "database_url",
    "module_database",
    "page",
    "pg_database",
    "postgres_template",
    "postgres_url",
    "server",
    "servers",
    "sqlite_url",
    "store",
    "template_repo",
}
# What only the acceptance tier may start: `falsework serve`, the CLI as a
# process, Chromium, a pty, faults.
ACCEPTANCE_ONLY_IMPORTS = (
    "pexpect",
    "playwright",
    "support.chaos",
    "support.faultlab",
    "support.serve",
    "support.servers",
)
FALSEWORK_PROCESS = re.compile(
    r"""with_name\(\s*["']falsework["']\s*\)"""  # the venv's falsework script
    r"""|parent / ["']falsework["']"""
    r"""|["']-m["'],\s*["']falsework"""  # python -m falsework…
)


def python_files(tier: str) -> Iterator[Path]:
    yield from sorted((TESTS / tier).rglob("*.py"))


def imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every module a file imports, at any depth (function-level imports too)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return ""


def parametrized(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The argument names a function's ``pytest.mark.parametrize`` decorators fill."""
    names: set[str] = set()
    for decorator in function.decorator_list:
        if not (isinstance(decorator, ast.Call) and dotted(decorator.func).endswith("parametrize")):
            continue
        first = decorator.args[0] if decorator.args else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.update(n.strip() for n in first.value.split(","))
        elif isinstance(first, ast.Tuple | ast.List):
            names.update(e.value for e in first.elts if isinstance(e, ast.Constant))
    return names


def matches(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def unit_violations(path: Path, source: str) -> list[str]:
    """What in one unit-tier file breaks the no-I/O rule, as file:line reasons."""
    tree = ast.parse(source)
    where = path.relative_to(TESTS)
    found = [
        f"{where}:{line}: imports {module}"
        for line, module in imported(tree)
        if matches(module, UNIT_FORBIDDEN_IMPORTS)
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and dotted(node.func) in UNIT_FORBIDDEN_CALLS:
            found.append(f"{where}:{node.lineno}: calls {dotted(node.func)}")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = {a.arg for a in node.args.args + node.args.kwonlyargs}
            arguments -= parametrized(node)
            for fixture in sorted(arguments & UNIT_FORBIDDEN_FIXTURES):
                found.append(f"{where}:{node.lineno}: {node.name} asks for {fixture}")
    return found


def integration_violations(path: Path, source: str) -> list[str]:
    """What in one integration-tier file belongs to the acceptance tier."""
    where = path.relative_to(TESTS)
    found = [
        f"{where}:{line}: imports {module}"
        for line, module in imported(ast.parse(source))
        if matches(module, ACCEPTANCE_ONLY_IMPORTS)
    ]
    for number, line in enumerate(source.splitlines(), 1):
        if FALSEWORK_PROCESS.search(line):
            found.append(f"{where}:{number}: starts a falsework process")
    return found


def test_every_test_file_is_in_a_tier() -> None:
    stray = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path.relative_to(TESTS).parts[0] not in (*TIERS, "support", "conftest.py")
        or (path.parts[-1].startswith("test_") and "support" in path.relative_to(TESTS).parts)
    ]
    assert stray == []
    assert all(list((TESTS / tier).rglob("test_*.py")) for tier in TIERS)


def test_the_unit_tier_does_no_io() -> None:
    found = [
        reason
        for path in python_files("unit")
        for reason in unit_violations(path, path.read_text())
    ]
    assert found == []


def test_the_integration_tier_starts_no_process_of_ours_and_no_browser() -> None:
    found = [
        reason
        for path in python_files("integration")
        for reason in integration_violations(path, path.read_text())
    ]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "import subprocess\n",
        "from support.servers import servers\n",
        "def f():\n    import psycopg\n",
        "import sqlite3\nsqlite3.connect(':memory:')\n",
        "def test_x(database_url: str) -> None:\n    pass\n",
        "async def test_x(broker) -> None:\n    pass\n",
        "@pytest.mark.parametrize('n', [1])\ndef test_x(n: int, store) -> None:\n    pass\n",
        "from falsework.engine.factory import open_store\n",
    ],
)
def test_the_unit_rule_sees_io(source: str) -> None:
    assert unit_violations(TESTS / "unit" / "test_example.py", source) != []


@pytest.mark.parametrize(
    "source",
    [
        "import pexpect\n",
        "from playwright.sync_api import Page\n",
        "from support import servers\n",
        'FALSEWORK = Path(sys.executable).with_name("falsework")\n',
        'subprocess.run([sys.executable, "-m", "falsework.cli.main", "ls"])\n',
    ],
)
def test_the_integration_rule_sees_what_belongs_to_acceptance(source: str) -> None:
    path = TESTS / "integration" / "test_example.py"
    assert integration_violations(path, source) != []


def test_the_rules_let_plain_tests_be() -> None:
    source = (
        "import sqlite3\nfrom pathlib import Path\nfrom support.templates import template_doc\n"
        "def test_x(tmp_path: Path) -> None:\n    sqlite3.Error('a class, no connection')\n"
        "@pytest.mark.parametrize(('page', 'n'), [({}, 1)])\n"
        "def test_y(page: dict[str, int], n: int) -> None:\n    pass\n"
    )
    assert unit_violations(TESTS / "unit" / "test_example.py", source) == []
    assert integration_violations(TESTS / "integration" / "test_example.py", source) == []
