"""The layout rules the code keeps: imports point inward, no private names cross modules, flows
compose tasks and store functions without SQL of their own, packages say what they are for."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("governance", "tasks", "flows", "govern_cli")
PACKAGES = (
    "registry",
    "intake",
    "explain",
    "recourse",
    "retraining",
    "deletion",
    "store",
    "data",
    "notices",
)
LONG_MODULE = 700


def _modules(*roots: str) -> list[Path]:
    return sorted(p for r in roots for p in (ROOT / r).rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imported_modules(tree: ast.Module) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_no_module_imports_another_modules_private_names():
    hits = []
    for path in _modules(*LAYERS):
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                hits += [
                    f"{path.relative_to(ROOT)}:{node.lineno} {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert not hits, "private names imported across modules:\n" + "\n".join(hits)


def test_the_core_imports_neither_prefect_nor_dask():
    hits = [
        f"{path.relative_to(ROOT)}: {m}"
        for path in _modules("governance")
        for m in _imported_modules(_tree(path))
        if m.split(".")[0] in ("prefect", "prefect_dask", "dask", "distributed")
    ]
    assert not hits, hits


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("governance", ("tasks", "flows", "govern_cli")),
        ("tasks", ("flows", "govern_cli")),
        ("flows", ("govern_cli",)),
    ],
)
def test_imports_point_inward(layer, forbidden):
    hits = [
        f"{path.relative_to(ROOT)}: {m}"
        for path in _modules(layer)
        for m in _imported_modules(_tree(path))
        if m.split(".")[0] in forbidden
    ]
    assert not hits, hits


def test_flows_run_no_sql_of_their_own():
    """Flows call store functions; statements and sessions' execute calls live in the store."""
    hits = []
    for path in _modules("flows"):
        tree = _tree(path)
        if any(m.split(".")[0] == "sqlalchemy" for m in _imported_modules(tree)):
            hits.append(f"{path.relative_to(ROOT)} imports sqlalchemy")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "scalar", "scalars", "get", "add", "delete")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "session"
            ):
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno} session.{node.func.attr}")
    assert not hits, hits


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_says_what_it_is_for_and_exports_its_public_names(package):
    module = importlib.import_module(f"governance.{package}")
    assert module.__doc__ and module.__doc__.strip(), f"governance.{package} has no docstring"
    exported = getattr(module, "__all__", None)
    assert exported, f"governance.{package} lists no public names in __all__"
    for name in exported:
        assert not name.startswith("_")
        assert hasattr(module, name), f"governance.{package}.__all__ names missing {name}"


def test_long_modules_say_why_they_read_best_whole():
    long = []
    for path in _modules("governance"):
        n = len(path.read_text().splitlines())
        doc = ast.get_docstring(_tree(path)) or ""
        if n > LONG_MODULE and "reads best whole" not in doc:
            long.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not long, long
