"""The house rules of the package layout, read from the source: which modules may import torch,
FAISS or SQLAlchemy, no import cycles, and no module grown past a size worth splitting."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "searchclip"

# third-party package -> where in searchclip/ it may be imported (at any depth of a module)
ALLOWED = {
    "torch": ("_encoders/", "training/"),
    "transformers": ("_encoders/", "training/"),
    "faiss": ("_vector_index/",),
    "ray": ("_cluster/",),
    "sqlalchemy": ("_catalog/",),
    "alembic": ("_catalog/",),
}
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "models" in path.relative_to(PACKAGE).parts:
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(path: Path, *, top_level_only: bool, modules: dict | None = None) -> set[str]:
    """What ``path`` imports; ``from package import submodule`` counts as the submodule only."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            submodules &= set(modules or ())
            names.update(submodules)
            if len(submodules) < len(node.names):
                names.add(node.module)
    return names


def test_heavy_packages_are_imported_only_where_they_belong():
    wrong = []
    for path in _modules().values():
        where = path.relative_to(PACKAGE).as_posix()
        for imported in _imports(path, top_level_only=False):
            root = imported.split(".")[0]
            if root in ALLOWED and not where.startswith(ALLOWED[root]):
                wrong.append(f"{where} imports {imported}")
    assert not wrong, wrong


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph = {
        name: {
            imported
            for imported in _imports(path, top_level_only=True, modules=modules)
            if imported in modules and imported != name
        }
        for name, path in modules.items()
    }
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_no_module_is_past_the_size_worth_splitting():
    long = {
        path.relative_to(PACKAGE).as_posix(): lines
        for path in _modules().values()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long
