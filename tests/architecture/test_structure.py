"""Code shape, read from the sources with ``ast``: no import cycle between the modules of one package,
and no function outside ``tests/`` longer than 80 lines.

An import anywhere in a module (also inside a function) is an edge. A package's ``__init__`` that
re-exports its modules is not part of a cycle. Long functions that are still being split are named in
``ALLOWED_LONG``; the list only shrinks (an entry that is no longer long is reported as a warning).
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "audio", "vision", "text", "video", "pointcloud", "timeseries", "robotics")
SCRIPT_FOLDERS = ("benchmarks", "scripts")
MAX_LINES = 80

ALLOWED_LONG: set[str] = set()
"""Functions over ``MAX_LINES`` lines that are being split; remove an entry once its function is short."""


def package_modules(pkg: str) -> dict[str, Path]:
    """``{dotted module name: file}`` of ``difflab.<pkg>`` (a package is named by its folder)."""
    src = ROOT / pkg / "src"
    modules = {}
    for path in sorted((src / "difflab" / pkg).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path, tree: ast.AST) -> set[str]:
    """Every module name an import statement of ``module`` may refer to (``from a import b`` gives
    ``a`` and ``a.b``); relative imports are resolved."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(pkg: str) -> dict[str, set[str]]:
    """Edges between the modules of ``difflab.<pkg>``, leaving out package ``__init__`` modules."""
    modules = package_modules(pkg)
    plain = {m for m, p in modules.items() if p.name != "__init__.py"}
    graph: dict[str, set[str]] = {}
    for module in sorted(plain):
        path = modules[module]
        targets = imported_names(module, path, ast.parse(path.read_text(), str(path)))
        graph[module] = {t for t in targets if t in plain and t != module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path) per back edge met by a depth-first search."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def long_functions(files: list[Path], limit: int = MAX_LINES, root: Path = ROOT) -> dict[str, int]:
    """``{"<file>::<function>": lines}`` for every function (or method) longer than ``limit`` lines."""
    found = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    found[f"{path.relative_to(root).as_posix()}::{node.name}"] = lines
    return found


def source_files() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg / "src").rglob("*.py"))]
    return files + [p for folder in SCRIPT_FOLDERS for p in sorted((ROOT / folder).glob("*.py"))]


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_import_cycle_inside_a_package(pkg):
    cycles = find_cycles(import_graph(pkg))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_function_over_80_lines():
    found = long_functions(source_files())
    new = {name: n for name, n in found.items() if name not in ALLOWED_LONG}
    assert not new, "functions over 80 lines (split them): " + ", ".join(f"{k} ({v})" for k, v in sorted(new.items()))
    stale = sorted(ALLOWED_LONG - found.keys())
    if stale:
        warnings.warn(f"no longer over {MAX_LINES} lines, remove from ALLOWED_LONG: {', '.join(stale)}", stacklevel=1)


def private_core_imports(path: Path, root: Path = ROOT) -> list[str]:
    """Imports in ``path`` of a private core module or name (``difflab.core._x``, ``from difflab.core.x
    import _y``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom) and not node.level:
            modules, names = [node.module or ""], [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            if not module.startswith("difflab.core"):
                continue
            parts = module.split(".")[2:] + names
            if any(part.startswith("_") for part in parts):
                found.append(f"{path.relative_to(root).as_posix()}:{node.lineno} {module} {names or ''}".strip())
    return found


@pytest.mark.parametrize("pkg", [p for p in PACKAGES if p != "core"])
def test_domains_use_only_public_core_names(pkg):
    """A domain imports no private core module or name (import-linter's wildcards cannot say "_*")."""
    found = [hit for path in sorted((ROOT / pkg / "src").rglob("*.py")) for hit in private_core_imports(path)]
    assert not found, "private core names imported: " + "; ".join(found)


def test_the_checks_are_not_vacuous(tmp_path):
    """A two-module cycle and a long function are found."""
    assert find_cycles({"p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": {"p.a"}}) == [["p.a", "p.b", "p.a"]]
    assert find_cycles({"p.a": {"p.b"}, "p.b": set()}) == []
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    path = tmp_path / "example.py"
    path.write_text(f"def long():\n{body}\n\ndef short():\n    return 1\n")
    assert long_functions([path], root=tmp_path) == {"example.py::long": MAX_LINES + 1}


def test_private_core_imports_are_found(tmp_path):
    path = tmp_path / "mod.py"
    lines = ["from difflab.core._broadcast import x", "from difflab.core.broadcast import _abs, ok"]
    lines.append("import difflab.core")
    path.write_text("\n".join(lines) + "\n")
    assert len(private_core_imports(path, root=tmp_path)) == 2


def test_relative_imports_resolve():
    tree = ast.parse("from . import b\nfrom ..c import d\nimport e.f\n")
    names = imported_names("difflab.x.sub.a", Path("a.py"), tree)
    assert {"difflab.x.sub.b", "difflab.x.c", "difflab.x.c.d", "e.f"} <= names
