"""The layers of docs/internals.md (and the design's ARCHITECTURE.md), read from the
source with ``ast``: what each package may import, where the configuration may be
read, and that each store's SQL file and its code name the same queries.

Every import counts, also one inside a function (a hidden dependency is still a
dependency); only ``if TYPE_CHECKING:`` blocks are left out (annotations).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import falsework

SRC = Path(falsework.__file__).parent

# Lower never imports higher. Rank 0: the small shared modules at the top of the
# package (errors, the task-I/O protocol, the folder confinement, logs, tracing).
RANK = {
    "errors": 0,
    "types": 0,
    "globs": 0,
    "confine": 0,
    "logs": 0,
    "taskio": 0,
    "tracing": 0,
    "yamlstart": 0,  # seeds PyYAML's slow pattern before it is imported (falsework/__init__)
    "templating": 1,
    "templates": 2,
    "actions": 3,
    "config": 3,  # the settings know the actions' policy types
    "localconfig": 3,  # the settings of `falsework run`, read without pydantic
    "settingtable": 3,  # the scalar settings declared once, for both readers
    "runner": 4,
    "updates": 4,  # template updates: render a version through the runner, merge with git
    "engine": 5,
    "webhooks": 6,  # completion webhooks: deliveries are engine tasks
    "wiring": 6,  # Settings -> the engine's and the runner's plain values
    "api": 6,
    "web": 6,
    "cli": 7,
    "testing": 7,  # falsework templates test and its pytest plugin: an edge too
}
# a module ranked apart from its package
RANK_OF_FILE = {
    "updates/fleet.py": 6,  # records scaffolds through the broker: wraps the executor
}
# the edges: where Settings may be read and turned into plain values
READS_CONFIG = {"config", "localconfig", "settingtable", "wiring", "api", "cli", "testing"}
CONFIG_MODULES = ("falsework.config", "falsework.localconfig", "falsework.settingtable")


def _top(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.relative_to(SRC).parts)


def _imports(path: Path, *, submodules: bool = False) -> set[str]:
    """The ``falsework`` modules ``path`` imports; with ``submodules``, also
    ``pkg.name`` for each ``from pkg import name`` (a module, when it is one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(inner) for inner in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if submodules:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("falsework.")}


def test_every_part_of_the_package_has_a_layer() -> None:
    unknown = {_top(p) for p in _files() if _top(p) != "__init__"} - set(RANK)
    assert not unknown, f"give {sorted(unknown)} a rank in RANK (and a line in docs/internals.md)"


def test_no_layer_imports_a_higher_one() -> None:
    wrong = []
    for path in _files():
        here = _top(path)
        if here == "__init__":
            continue
        where = path.relative_to(SRC).as_posix()
        rank = RANK_OF_FILE.get(where, RANK[here])
        for module in _imports(path):
            there = module.split(".")[1]
            target = RANK_OF_FILE.get(module.removeprefix("falsework.").replace(".", "/") + ".py")
            if there in RANK and (target or RANK[there]) > rank:
                wrong.append(f"{where} (layer {rank}) imports {module}")
    assert not wrong, "\n".join(wrong)


def test_only_the_edges_read_the_configuration() -> None:
    wrong = []
    for path in _files():
        if _top(path) in READS_CONFIG:
            continue
        wrong += [
            f"{path.relative_to(SRC)} imports {m}"
            for m in _imports(path)
            if m in CONFIG_MODULES or m.startswith("falsework.config.")
        ]
    assert not wrong, "\n".join(wrong) + "\n(pass plain values built in falsework.wiring)"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycle_between_modules() -> None:
    """Every import counts (a function-level import hides a cycle, it does not
    remove it), but a module importing one of its own packages (their
    ``__init__`` re-exports) does not."""
    files = {_module(p): p for p in _files()}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        edges = set()
        for module in _imports(path, submodules=True):
            if module not in files or module == name or name.startswith(module + "."):
                continue  # a name, not a module; itself; or one of its own packages
            edges.add(module)
        graph[name] = edges
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


_QUERY_CALL = re.compile(
    r"\.(?:read|write|fetch|execute|fetchval|fetchrow)\(\s*\"([a-z][a-z0-9_]*)\""
)
_QUERY_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def _query_names(dialect: str) -> set[str]:
    text = (SRC / "engine" / "sql" / f"{dialect}.sql").read_text(encoding="utf-8")
    return set(_QUERY_NAME.findall(text))


def test_each_store_and_its_sql_file_name_the_same_queries() -> None:
    for dialect in ("postgres", "sqlite"):
        code = (SRC / "engine" / f"{dialect}.py").read_text(encoding="utf-8")
        defined = _query_names(dialect)
        called = set(_QUERY_CALL.findall(code))
        assert called, f"no named query calls found in engine/{dialect}.py"
        missing = called - defined
        assert not missing, f"engine/{dialect}.py runs {sorted(missing)}, not in sql/{dialect}.sql"
        # task_list is expanded per order (engine/queries.py); the others must be used
        words = set(re.findall(r"\"(\w+)\"", code))
        unused = {n for n in defined - words if n != "task_list"}
        assert not unused, f"sql/{dialect}.sql defines {sorted(unused)}, never run"


def test_the_query_pattern_finds_the_calls_as_they_are_written() -> None:
    # the parity test above is only as good as this pattern
    sample = 'rows = await self._db.read("task_get", id=x)\nawait tx.fetch(\n    "claim", a=1)'
    assert set(_QUERY_CALL.findall(sample)) == {"task_get", "claim"}
