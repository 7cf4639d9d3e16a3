"""The engine's boundaries, read from the source (an AST test, no import-linter):
it imports nothing above it, only the stores know a database driver, and its
modules import each other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import falsework

SRC = Path(falsework.__file__).parent
ABOVE = ("config", "wiring", "runner", "api", "web", "cli", "templates", "actions", "templating")
DRIVERS = ("asyncpg", "aiosqlite", "sqlite3", "sqlalchemy", "alembic", "psycopg")
# where a driver (or SQLAlchemy, for the schema and migrations) may be imported
DRIVER_MODULES = {
    "engine/postgres.py",
    "engine/sqlite.py",
    "engine/migrate.py",
    "engine/schema.py",
    "engine/migrations/env.py",
}


def _imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _files() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if "migrations/versions" not in p.as_posix()]


def test_the_engine_imports_nothing_above_it() -> None:
    for path in (SRC / "engine").rglob("*.py"):
        for module in _imports(path):
            layer = module.split(".")[1] if module.startswith("falsework.") else ""
            assert layer not in ABOVE, f"{path.relative_to(SRC)} imports {module}"


def test_only_the_stores_know_a_driver() -> None:
    for path in _files():
        where = path.relative_to(SRC).as_posix()
        drivers = {m for m in _imports(path) if m.split(".")[0] in DRIVERS}
        if where not in DRIVER_MODULES:
            assert not drivers, f"{where} imports {sorted(drivers)}"


def test_engine_modules_import_each_other_without_a_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for path in (SRC / "engine").glob("*.py"):
        if path.name == "__init__.py":
            continue
        graph[path.stem] = {
            m.removeprefix("falsework.engine.")
            for m in _imports(path, top_level_only=True)
            if m.startswith("falsework.engine.")
        }
    seen: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        seen[module] = 1
        for dep in graph.get(module, ()):
            assert seen.get(dep) != 1, " -> ".join([*trail, module, dep])
            if dep not in seen:
                visit(dep, [*trail, module])
        seen[module] = 2

    for module in graph:
        if module not in seen:
            visit(module, [])
    assert "store" in graph and graph["store"] <= {"models", "notify"}  # the contract


def test_the_worker_reaches_the_database_only_through_the_broker() -> None:
    # issue 9: the worker talks to one facade; `<anything>.store` in worker.py would
    # be the worker reaching past the broker into its store
    tree = ast.parse((SRC / "engine" / "worker.py").read_text(encoding="utf-8"))
    reached = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("store", "_store")
    ]
    assert reached == [], f"engine/worker.py reaches a store at lines {reached}"
