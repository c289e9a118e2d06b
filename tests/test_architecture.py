"""The layout the README describes: thin pipelines over a library, no layer crossed."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

SOURCES = sorted((REPO / "src" / "fruits").rglob("*.py")) + sorted(
    (REPO / "benchmarks").rglob("*.py")
)
PIPELINES = REPO / "src" / "fruits" / "pipelines"
# The library knows nothing of Kedro's pipelines nor of the apps built on it.
LIBRARY = ["vision", "ml", "spark", "datasets"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(REPO)))
def test_no_module_outside_the_pipelines_imports_a_pipeline(path):
    if path.is_relative_to(PIPELINES):
        return
    assert not {m for m in imported_modules(path) if m.startswith("fruits.pipelines")}


@pytest.mark.parametrize("package", LIBRARY)
def test_the_library_imports_neither_pipelines_nor_apps(package):
    for path in (REPO / "src" / "fruits" / package).rglob("*.py"):
        crossing = {
            module
            for module in imported_modules(path)
            if module.startswith(
                ("fruits.pipelines", "fruits.apps", "fruits.hooks", "kedro.pipeline")
            )
        }
        assert not crossing, f"{path.relative_to(REPO)} imports {crossing}"


def test_files_stay_small():
    for path in SOURCES:
        lines = len(path.read_text().splitlines())
        limit = 150 if path.name == "nodes.py" else 400
        assert lines <= limit, f"{path.relative_to(REPO)}: {lines} lines (at most {limit})"
