"""The notebooks execute headless, top to bottom, on a real pipeline run."""

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO, copy_project

pytestmark = pytest.mark.notebook

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# Figures each notebook draws at least (02 draws one more when a test image is misclassified).
FIGURES = {"01_exploration": 2, "02_results": 3}


@pytest.fixture(scope="module")
def project_with_outputs(tmp_path_factory, pipeline_run) -> Path:
    """A project copy whose data/ holds the pipeline run's outputs (the default data_root)."""
    project = copy_project(tmp_path_factory.mktemp("notebook_project"))
    shutil.copytree(pipeline_run.data_root, project / "data")
    shutil.copytree(REPO / "data" / "01_raw", project / "data" / "01_raw", dirs_exist_ok=True)
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    shutil.copy2(REPO / ".telemetry", project / ".telemetry")
    (project / ".jars").symlink_to(REPO / ".jars")  # what `make setup` fetched (Delta's jars)
    return project


def test_both_notebooks_exist():
    assert [n.name for n in NOTEBOOKS] == ["01_exploration.ipynb", "02_results.ipynb"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_and_draws(project_with_outputs, notebook):
    executed_path = project_with_outputs / "notebooks" / notebook.name
    document = nbformat.read(executed_path, as_version=4)
    assert "%load_ext kedro.ipython" in document.cells[1].source
    NotebookClient(
        document,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(executed_path.parent)}},
    ).execute()
    outputs = [
        output for cell in document.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= FIGURES[notebook.stem]  # every plot rendered
