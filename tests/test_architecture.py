"""The shape of ``turk/`` (docs/design.md, "The map"), checked from the source.

* Imports go only downward: cli -> project -> dataset -> crowd -> hits -> candidates ->
  collection -> the shared base (errors, money, ledger, text, migrations); no module
  imports one of a higher area, and no import cycle exists between modules, counting
  imports inside functions too.
* The MTurk double (``turk.sandbox``) imports nothing else of turk, and only
  ``turk.crowd.local`` and the ``turk sandbox`` commands import it.
* Each ledger table is named in SQL only by its owner area.
* Every area package's command module has the area's name.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TURK = ROOT / "turk"

LAYERS = ["base", "collection", "candidates", "hits", "crowd", "dataset", "project", "cli"]
"""Areas from the bottom up: a module may import its own area and any area below it."""

BASE = {"__init__", "errors", "money", "ledger", "text", "migrations"}
"""The shared base: top-level modules (and the migrations) every area may import."""

OWNERS = {
    "sources": "collection",
    "images": "collection",
    "buckets": "collection",
    "embedding_shards": "candidates",
    "embedding_failures": "candidates",
    "candidates": "candidates",
    "hit_secret": "hits",
    "hit_types": "crowd",
    "hits": "crowd",
    "hit_items": "crowd",
    "assignments": "crowd",
    "answers": "crowd",
    "actions": "crowd",
    "qualifications": "crowd",
    "worker_blocks": "crowd",
    "audits": "dataset",
    "audit_items": "dataset",
    "rounds": "dataset",
    "stages": "project",
    "runs": "base",
}
"""Ledger tables by owner area (docs/design.md, "Who owns which table")."""

SANDBOX_DOORS = {"turk.crowd.local", "turk.cli.commands.sandbox"}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(TURK.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _area(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in BASE:
        return "base"
    return parts[1]


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every turk module ``module`` imports, anywhere in its body, with the line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            yield base, node.lineno
            for alias in node.names:  # "from turk.x import module" imports a module
                yield f"{base}.{alias.name}", node.lineno


def _graph() -> dict[str, set[tuple[str, int]]]:
    modules = dict(_modules())
    graph: dict[str, set[tuple[str, int]]] = {}
    for module, path in modules.items():
        found = set()
        for name, line in _imports(module, path):
            if name in modules and name != module:
                found.add((name, line))
        graph[module] = found
    return graph


def test_imports_go_only_downward() -> None:
    upward = []
    for module, targets in _graph().items():
        if module == "turk.__main__" or module.startswith("turk.sandbox"):
            continue
        mine = LAYERS.index(_area(module))
        for target, line in targets:
            if target.startswith("turk.sandbox") or target == "turk":
                continue
            if LAYERS.index(_area(target)) > mine:
                upward.append(f"{module}:{line} imports {target}")
    assert upward == []


def test_no_import_cycles() -> None:
    graph = {m: {t for t, _ in targets} for m, targets in _graph().items()}
    # A package's __init__ re-exports its modules lazily; importing the package is not
    # an edge back into it.
    for module in graph:
        graph[module] = {t for t in graph[module] if not module.startswith(t + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_only_one_door_to_the_mturk_double() -> None:
    graph = _graph()
    offenders = [
        f"{module}:{line}"
        for module, targets in graph.items()
        if not module.startswith("turk.sandbox") and module not in SANDBOX_DOORS
        for target, line in targets
        if target.startswith("turk.sandbox")
    ]
    assert offenders == []
    inside_out = [
        f"{module}:{line} imports {target}"
        for module, targets in graph.items()
        if module.startswith("turk.sandbox")
        for target, line in targets
        if not target.startswith("turk.sandbox")
    ]
    assert inside_out == []


def _sql_texts(path: Path) -> Iterator[tuple[str, int]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value, node.lineno
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            yield text, node.lineno


_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|REPLACE)\b")


def test_each_table_is_named_only_by_its_owner() -> None:
    strays = []
    for module, path in _modules():
        if module.startswith(("turk.sandbox", "turk.migrations")):
            continue
        area = _area(module)
        for text, line in _sql_texts(path):
            if not _SQL.search(text):
                continue
            for table, owner in OWNERS.items():
                if owner != area and re.search(rf"\b(FROM|JOIN|INTO|UPDATE)\s+{table}\b", text):
                    strays.append(f"{module}:{line} names {table} (owned by {owner})")
    assert strays == []


def test_every_ledger_table_has_an_owner() -> None:
    created = set()
    for path in (TURK / "migrations").glob("m*.py"):
        created |= set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", path.read_text()))
    assert created == set(OWNERS)


def test_design_names_every_owner() -> None:
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = design.split("## Who owns which table", 1)[1].split("\n## ", 1)[0]
    for table, owner in OWNERS.items():
        assert re.search(rf"`{table}`.*\|\s*{owner}\b", section), table


@pytest.mark.parametrize("area", LAYERS[1:-1])
def test_area_and_command_module_share_a_name(area: str) -> None:
    assert (TURK / area / "__init__.py").is_file()
    assert (TURK / "cli" / "commands" / f"{area}.py").is_file()


def test_only_the_shared_base_is_top_level() -> None:
    top = {p.stem for p in TURK.glob("*.py")}
    assert top == (BASE - {"migrations"}) | {"__main__"}
