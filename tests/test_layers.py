"""The layering that ``service/__init__.py`` promises: each package imports only the packages before it, and no
module imports, even lazily inside a function, one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["core", "analysis", "ingest", "fanout", "storage", "live", "web", "cli"]
ALLOWED = {
    "core": set(),
    "analysis": {"core"},
    "ingest": {"core"},
    "fanout": {"core", "analysis"},
    "storage": {"core", "analysis"},
    "live": {"core", "analysis", "ingest", "fanout", "storage"},
    "web": {"core", "analysis", "ingest", "fanout", "storage", "live"},
    "cli": set(ORDER) - {"cli"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every ``service`` module this file imports, at the top or inside a function (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("service."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("service"):
            for a in node.names:
                candidate = f"{node.module}.{a.name}"
                found.add(candidate if (ROOT / (candidate.replace(".", "/") + ".py")).exists()
                          or (ROOT / candidate.replace(".", "/")).is_dir() else node.module)
    return found


MODULES = {module_name(p): p for p in sorted((ROOT / "service").rglob("*.py"))}
GRAPH = {name: {m for m in imports(p) if m in MODULES and m != name} for name, p in MODULES.items()}


def package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else None


def test_every_package_says_what_it_owns() -> None:
    for name in ORDER:
        doc = ast.get_docstring(ast.parse((ROOT / "service" / name / "__init__.py").read_text()))
        assert doc and len(doc) > 80, f"service.{name} needs a docstring saying what it owns and may import"


def test_no_module_sits_outside_a_package() -> None:
    loose = [m for m in MODULES if m.count(".") == 1 and m.split(".")[1] not in set(ALLOWED) | {"__main__"}]
    assert not loose, f"place these in a package: {loose}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_inward(name: str) -> None:
    own = package(name)
    if own is None:
        return
    wrong = sorted(m for m in GRAPH[name] if (p := package(m)) is not None and p != own and p not in ALLOWED[own])
    assert not wrong, f"{name} ({own}) may import only {sorted(ALLOWED[own])}, but imports {wrong}"


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
