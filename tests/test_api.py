"""The public API is exactly what ``searchclip`` exports (STYLE.md rows 4 and 16)."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import searchclip


def test_all_is_exactly_the_public_names_of_the_module():
    public = sorted(
        (
            name
            for name in dir(searchclip)  # vars() and the names loaded on first use
            if (not name.startswith("_") or name == "__version__")
            and not isinstance(getattr(searchclip, name), types.ModuleType)  # `training`
        ),
        key=str.casefold,
    )
    assert sorted(searchclip.__all__, key=str.casefold) == public


def test_every_exported_name_says_it_is_searchclips():
    for name in searchclip.__all__:
        value = getattr(searchclip, name)
        if hasattr(value, "__module__"):
            assert value.__module__ == "searchclip", name


def test_implementation_modules_are_private():
    # a command, two data folders, and the HTTP server (`searchclip.server.create_app`)
    public_modules = {"training", "models", "vocabularies", "server"}
    names = {module.name for module in pkgutil.iter_modules(searchclip.__path__)}
    assert {name for name in names if not name.startswith("_")} <= public_modules


def test_errors_form_one_tree_with_the_documented_bases():
    errors = {
        name: getattr(searchclip, name) for name in searchclip.__all__ if name.endswith("Error")
    }
    assert all(issubclass(error, searchclip.SearchclipError) for error in errors.values())
    bases = (
        searchclip.IndexStateError,
        searchclip.ModelError,
        searchclip.FileError,
        searchclip.InputError,
        searchclip.ClusterError,
    )
    for name, error in errors.items():
        if error is not searchclip.SearchclipError and error not in bases:
            assert issubclass(error, bases), name
    assert issubclass(searchclip.InvalidArgumentError, ValueError)
    assert issubclass(searchclip.MissingExtraError, ImportError)


def test_errors_carry_their_context():
    error = searchclip.ModelMismatchError(
        "built with a", model="b", recorded="a", index_dir="/tmp/idx"
    )
    assert (error.model, error.recorded, error.index_dir) == ("b", "a", "/tmp/idx")
    assert searchclip.ImageReadError("not an image", "/p.png").path == "/p.png"
    assert searchclip.InvalidArgumentError("k must be positive", value=0).value == 0
    assert searchclip.EmptyIndexError("empty", index_dir="/i").index_dir == "/i"
    assert searchclip.MissingExtraError("needs torch", extra="clip").extra == "clip"


def test_importing_every_module_changes_no_warning_filter_or_logger():
    # Third-party packages may set filters of their own when imported (scipy does): run every
    # third-party import statement of the package first, then ours must change nothing.
    third_party = []
    for path in Path(searchclip.__file__).parent.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import | ast.ImportFrom) and not node.__dict__.get("level"):
                names = (
                    [node.module]
                    if isinstance(node, ast.ImportFrom)
                    else [alias.name for alias in node.names]
                )
                if not any(str(name).startswith(("searchclip", "__future__")) for name in names):
                    third_party.append(ast.unparse(node))
    script = "\n".join(
        [
            "import importlib, logging, pkgutil, sys, warnings",
            *(
                f"try:\n    {line}\nexcept Exception:\n    pass"
                for line in sorted(set(third_party))
            ),
            "before = (list(warnings.filters), logging.getLogger().level,"
            " list(logging.getLogger().handlers))",
            "import searchclip",
            "for m in pkgutil.walk_packages(searchclip.__path__, 'searchclip.'):",
            "    if not m.name.startswith(('searchclip.training', 'searchclip.__main__')):",
            "        importlib.import_module(m.name)",
            "after = (list(warnings.filters), logging.getLogger().level,"
            " list(logging.getLogger().handlers))",
            "sys.exit(0 if before == after else f'changed: {after}')",
        ]
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
