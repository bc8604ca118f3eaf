"""The modules of ``cache_service`` import each other without a cycle.

The graph is read from the source with ``ast``, so it sees every import: at module level, inside functions (a
"lazy" import only hides a cycle from the interpreter) and under ``if TYPE_CHECKING:`` (a back-reference for
annotations is still a dependency; a small Protocol on the using side removes it). A cycle means two modules each
need the other; one of them should own what both use.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_names(package: Path) -> dict[str, Path]:
    """Every module of ``package`` by its dotted name (a package by the name of its ``__init__``)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that module ``name`` (at ``path``) imports, anywhere in its source."""
    found: set[str] = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                # ``from package import module`` needs that module; ``from module import name`` needs the module.
                if f"{source}.{alias.name}" in modules:
                    found.add(f"{source}.{alias.name}")
                elif source in modules:
                    found.add(source)
    found.discard(name)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module name -> the modules of the same package it imports."""
    modules = module_names(package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts (``[a, b, a]``), or None when the graph has none."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        pending = [iter(sorted(graph[start]))]
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                pending.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                pending.append(iter(sorted(graph[nxt])))
    return None


def test_cache_service_has_no_import_cycle() -> None:
    graph = import_graph(ROOT / "cache_service")
    # The reader must see real imports, or "no cycle" would prove nothing.
    assert "cache_service.namespace.mounts" in graph["cache_service.config"]
    assert "cache_service.page_store.store" in graph["cache_service.page_store"]

    cycle = find_cycle(graph)

    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_cycle_hidden_in_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "config.py").write_text("def check():\n    from pkg.sub.table import Table\n    return Table\n")
    (package / "sub" / "table.py").write_text("from ..config import check\n\nclass Table: ...\n")
    (package / "leaf.py").write_text("from pkg import config\n")

    cycle = find_cycle(import_graph(package))

    assert cycle is not None
    assert set(cycle) == {"pkg.config", "pkg.sub.table"}
    assert cycle[0] == cycle[-1]


def test_a_cycle_through_an_annotation_only_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "reader.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from pkg.files import Files\n"
    )
    (package / "files.py").write_text("from pkg.reader import *\n")

    assert find_cycle(import_graph(package)) == ["pkg.files", "pkg.reader", "pkg.files"]


def test_an_acyclic_package_passes(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg.a import A\n")
    (package / "a.py").write_text("from pkg import b\n\nA = b.B\n")
    (package / "b.py").write_text("B = 1\n")

    assert find_cycle(import_graph(package)) is None
