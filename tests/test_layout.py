"""The layout rules of the developers' guide: no import cycles, no file over 400 lines.

:func:`import_cycles` reads a package's sources with ``ast`` (nothing is imported) and
returns the cycles of its internal import graph; it works for any package directory.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400


# ---------------------------------------------------------------------------------------
# the import graph
# ---------------------------------------------------------------------------------------
def module_names(package_dir: Path, package_name: str) -> dict[str, Path]:
    """Every module of the package by dotted name (``pkg/sub/__init__.py`` is ``pkg.sub``)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package_name, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """The import statements anywhere under ``node`` (inside functions too), except under TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            found.append(child)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:  # the else branch runs
                found.extend([stmt] if isinstance(stmt, ast.Import | ast.ImportFrom) else _imports(stmt))
        else:
            found.extend(_imports(child))
    return found


def import_graph(package_dir: str | Path, package_name: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports.

    ``from X import name`` is an edge to the submodule ``X.name`` when that is a module,
    else to ``X`` itself (where ``name`` is defined or re-exported); so a submodule that
    takes a name from its own package's ``__init__`` has an edge to the package. The
    parent packages that Python initializes on the way are not edges: a package whose
    ``__init__`` imports its submodules, which import each other, has no cycle.
    """
    package_dir = Path(package_dir)
    modules = module_names(package_dir, package_name)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]  # the package relative imports start from
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = here.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def import_cycles(package_dir: str | Path, package_name: str) -> list[list[str]]:
    """The import cycles inside a package, each as a path ``[a, b, ..., a]``; ``[]`` when there is none.

    One cycle per strongly connected group of modules (Tarjan's algorithm, then a path
    around the group), so a tangle of many modules is reported once.
    """
    graph = import_graph(package_dir, package_name)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, group) for group in sorted(groups, key=min)]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A cycle through the smallest module of a strongly connected group (breadth-first, shortest)."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")


def _describe(cycles: list[list[str]]) -> str:
    return "import cycles:\n" + "\n".join("  " + " -> ".join(c) for c in cycles)


# ---------------------------------------------------------------------------------------
# the checker on small made-up packages
# ---------------------------------------------------------------------------------------
def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_checker_accepts_a_package_whose_init_imports_its_modules(tmp_path):
    pkg = write_package(
        tmp_path,
        {
            "__init__.py": "from .a import f\nfrom .sub import g\n",
            "a.py": "from .sub.b import g\n\ndef f():\n    return g()\n",
            "sub/__init__.py": "from .b import g\nfrom . import c\n",
            "sub/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n\ndef g():\n"
            "    return 1\n",
            "sub/c.py": "from .b import g\nimport os\n",
        },
    )
    graph = import_graph(pkg, "pkg")
    assert graph == {
        "pkg": {"pkg.a", "pkg.sub"},
        "pkg.a": {"pkg.sub.b"},
        "pkg.sub": {"pkg.sub.b", "pkg.sub.c"},
        "pkg.sub.b": set(),  # the TYPE_CHECKING import is no edge
        "pkg.sub.c": {"pkg.sub.b"},
    }
    assert import_cycles(pkg, "pkg") == []


@pytest.mark.parametrize(
    "files, cycle",
    [
        # a module takes a name from its own package's __init__, which imports the module
        ({"__init__.py": "from .errors import E\nfrom . import cmd\n", "errors.py": "class E(Exception): ...\n",
          "cmd.py": "from . import E\n"}, ["pkg", "pkg.cmd", "pkg"]),
        # the same with an absolute import, inside a function
        ({"__init__.py": "VERSION = 1\nfrom .cmd import run\n", "cmd.py": "def run():\n    from pkg import VERSION\n"},
         ["pkg", "pkg.cmd", "pkg"]),
        # two siblings through a parent-relative import and an "else" of TYPE_CHECKING
        ({"__init__.py": "", "a.py": "import pkg.sub.b\n",
          "sub/__init__.py": "", "sub/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\n"
          "else:\n    from ..a import x\n"}, ["pkg.a", "pkg.sub.b", "pkg.a"]),
        # three modules in a ring
        ({"__init__.py": "", "a.py": "from .b import x\n", "b.py": "from .c import x\n", "c.py": "from .a import x\n"},
         ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]),
    ],
)
def test_checker_finds_the_cycle(tmp_path, files, cycle):
    assert import_cycles(write_package(tmp_path, files), "pkg") == [cycle]


# ---------------------------------------------------------------------------------------
# the rules on this repository
# ---------------------------------------------------------------------------------------
def test_encoder_has_no_import_cycle():
    assert len(module_names(ROOT / "encoder", "encoder")) > 10  # the checker did see the package
    cycles = import_cycles(ROOT / "encoder", "encoder")
    assert not cycles, _describe(cycles)


def test_minigrad_has_no_import_cycle():
    assert len(module_names(ROOT / "minigrad", "minigrad")) > 10  # the checker did see the package
    cycles = import_cycles(ROOT / "minigrad", "minigrad")
    assert not cycles, _describe(cycles)


@pytest.mark.parametrize("package", ["minigrad", "encoder"])
def test_no_file_over_400_lines(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    too_long = {
        path.relative_to(ROOT).as_posix(): n
        for path in files
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, f"files over {MAX_LINES} lines: {too_long}"
