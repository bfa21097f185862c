"""The library's shape: one hop from the top to any stage, no import cycles, no module over ~450 lines,
nothing from benchmarks/ or tests/ in the installed package, and the package graph drawn in
docs/ARCHITECTURE.md equal to the one the code's imports make."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from pitlake.core.settings import REPO_ROOT

PACKAGE = REPO_ROOT / "include" / "pitlake"
MAX_LINES = 460


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, known: dict[str, Path]) -> Iterator[tuple[str, list[str]]]:
    """``(module, names)`` of every absolute import in the file, function-level ones included.

    ``from pitlake.x import y`` counts as importing ``pitlake.x.y`` when that is a module."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [a.name for a in node.names]
            submodules = [f"{node.module}.{n}" for n in names if f"{node.module}.{n}" in known]
            for sub in submodules:
                yield sub, []
            if len(submodules) < len(names):
                yield node.module, [n for n in names if f"{node.module}.{n}" not in known]


def package_of(module: str) -> str:
    """The stage package of a library module: ``pitlake.core.jvm`` -> ``core``, ``pitlake.summary`` -> ``summary``."""
    name = module.split(".")[1] if module.count(".") >= 1 else "pitlake"
    return "cli" if name == "__main__" else name


def module_graph() -> dict[str, set[str]]:
    known = library()
    return {name: {m for m, _ in imported(path, known) if m in known and m != name} for name, path in known.items()}


def package_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for src, targets in module_graph().items():
        for dst in targets:
            if package_of(dst) != package_of(src):
                edges.setdefault(package_of(src), set()).add(package_of(dst))
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}}) is None


def test_no_library_module_is_longer_than_the_limit():
    long = {name: n for name, path in library().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules (limit {MAX_LINES} lines): {long}"


def test_modules_do_not_import_each_other_in_a_cycle():
    assert find_cycle(module_graph()) is None


def test_stage_packages_do_not_import_each_other_in_a_cycle():
    assert find_cycle(package_graph()) is None


def test_no_module_imports_a_private_name_of_another():
    known = library()
    private = [
        f"{name} imports {module}.{n}"
        for name, path in known.items()
        for module, names in imported(path, known)
        if module.startswith("pitlake")
        for n in names
        if n.startswith("_") and not n.startswith("__")
    ]
    assert private == []


def test_the_installed_package_imports_neither_benchmarks_nor_tests():
    known = library()
    found = [
        f"{name} imports {module}"
        for name, path in known.items()
        for module, _ in imported(path, known)
        if module.split(".")[0] in ("benchmarks", "tests")
    ]
    assert found == []


def test_every_stage_package_has_a_docstring():
    missing = [
        str(init.relative_to(REPO_ROOT))
        for init in sorted(PACKAGE.glob("*/__init__.py"))
        if not ast.get_docstring(ast.parse(init.read_text()))
    ]
    assert missing == []


def architecture_edges() -> dict[str, set[str]]:
    """The edges of the Mermaid block marked ``%% imports`` in docs/ARCHITECTURE.md (``a --> b``: a imports b)."""
    text = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    block = re.search(r"```mermaid\n(?:[^`]*\n)?%% imports\n(.*?)```", text, re.S)
    assert block, "docs/ARCHITECTURE.md has no ```mermaid block with a '%% imports' line"
    edges: dict[str, set[str]] = {}
    for src, dst in re.findall(r"^\s*(\w+)\s*-->\s*(\w+)\s*$", block.group(1), re.M):
        edges.setdefault(src, set()).add(dst)
    return edges


def test_core_imports_no_other_package():
    assert package_graph().get("core", set()) == set()


def test_the_architecture_diagram_draws_the_imports_the_code_makes():
    """Every edge but those into ``core`` (which every package imports) is drawn, and nothing else."""
    drawn = architecture_edges()
    actual = {src: {d for d in dsts if d != "core"} for src, dsts in package_graph().items()}
    pairs = lambda g: {(a, b) for a, bs in g.items() for b in bs}  # noqa: E731
    assert pairs(drawn) - pairs(actual) == set(), "drawn in docs/ARCHITECTURE.md but not imported"
    assert pairs(actual) - pairs(drawn) == set(), "imported but not drawn in docs/ARCHITECTURE.md"


def test_the_readme_layout_names_paths_that_exist():
    """Each entry of the README's layout tree exists; an indented entry is inside the entry above it."""
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"## Layout\n.*?```\n(.*?)```", text, re.S)
    assert block
    paths, parent = [], ""
    for line in block.group(1).splitlines():
        entry = re.match(r"(\s*)(\S+)\s{2,}", line)
        if not entry:
            continue
        if entry.group(1):
            paths.append(parent + entry.group(2))
        else:
            parent = entry.group(2)
            paths.append(parent)
    assert len(paths) > 15
    missing = [p for p in paths if not (REPO_ROOT / p).exists()]
    assert missing == []
