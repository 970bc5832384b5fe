"""The folder listing is the architecture: public API in ``providers/``, machinery in
``providers/core/`` and ``providers/media/``, one module per provider in
``providers/builtin/``. These tests keep it so: no import cycle, no oversized machinery
module, every built-in provider found by name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("providers", "schemas", "transforms", "pipelines")
MACHINERY = ("providers/core", "providers/media", "providers", "schemas", "transforms", "pipelines")
MAX_MACHINERY_LINES = 630  # "about 600": past it, a module is doing two jobs


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str], *, top_level_only: bool) -> set[str]:
    """Project modules ``name`` imports (at module level, or anywhere)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(_runtime_nodes(tree))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module in known and module != name}


def _runtime_nodes(node: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
            continue
        yield child
        yield from _runtime_nodes(child)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in visiting:
            return visiting[visiting.index(module):] + [module]
        if module in done:
            return None
        visiting.append(module)
        for dependency in sorted(edges[module]):
            cycle = visit(dependency)
            if cycle:
                return cycle
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(edges):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


@pytest.mark.parametrize("top_level_only", [True, False], ids=["module-level imports", "all imports"])
def test_the_import_graph_has_no_cycle(top_level_only: bool) -> None:
    modules = project_modules()
    known = set(modules)
    edges = {name: imported_modules(name, path, known, top_level_only=top_level_only) for name, path in modules.items()}
    # A package's __init__ naming its own modules lazily is not a dependency of theirs.
    for name in edges:
        edges[name] = {d for d in edges[name] if not d.startswith(name + ".") and not name.startswith(d + ".")} \
            if "." not in name else {d for d in edges[name] if not name.startswith(d + ".")}
    assert find_cycle(edges) is None, f"import cycle: {' -> '.join(find_cycle(edges) or [])}"


def test_machinery_modules_stay_small() -> None:
    too_big = {}
    for folder in MACHINERY:
        for path in (ROOT / folder).glob("*.py"):
            lines = len(path.read_text().splitlines())
            if lines > MAX_MACHINERY_LINES:
                too_big[str(path.relative_to(ROOT))] = lines
    assert not too_big, f"machinery modules over {MAX_MACHINERY_LINES} lines: {too_big}"


def test_every_builtin_provider_is_one_module_in_builtin() -> None:
    from providers.registry import BUILTIN_PROVIDERS

    for name, target in BUILTIN_PROVIDERS.items():
        module = target.partition(":")[0]
        assert module.startswith("providers.builtin."), f"{name}: {module}"
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), f"{name}: {module} is not a file"
