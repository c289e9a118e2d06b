"""The project as a whole: registry, configuration, the `kedro` CLI and kedro-viz."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from kedro.framework.project import pipelines

from tests.conftest import REPO, WEIGHTS_PARAMS, copy_project, copy_real_images
from tests.helpers import local_path

KEDRO = str(Path(sys.executable).with_name("kedro"))
DATASETS = [
    "raw_images", "images", "backbone_weights", "image_features",
    "pca_model", "pca_features", "explained_variance", "scree_plot",
]  # fmt: skip


def test_three_pipelines_registered_and_run_together_by_default():
    assert {"ingestion", "featurization", "reduction"} <= set(pipelines)
    default_nodes = {node.name for node in pipelines["__default__"].nodes}
    for name in ("ingestion", "featurization", "reduction"):
        assert {node.name for node in pipelines[name].nodes} <= default_nodes
    assert set(pipelines["__default__"].datasets()) >= set(DATASETS)


def test_every_pipeline_has_its_parameters_file():
    for name in ("ingestion", "featurization", "reduction"):
        assert (REPO / "conf" / "base" / f"parameters_{name}.yml").is_file()


def test_cli_processes_the_folder_given_at_run_time(tmp_path):
    raw_images = tmp_path / "any dir"
    image_files = copy_real_images(raw_images, ["Kiwi", "Lemon"], {"Training": 2, "Test": 1})
    params = {"raw_images_path": str(raw_images), "data_root": str(tmp_path / "out")}
    params |= WEIGHTS_PARAMS
    subprocess.run(
        [KEDRO, "run", "--env", "local", "--pipeline", "ingestion",
         "--params", ",".join(f"{key}={value}" for key, value in params.items())],
        cwd=REPO, check=True, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip
    images = pd.read_parquet(tmp_path / "out" / "02_intermediate" / "images.parquet")
    assert sorted(local_path(uri) for uri in images["path"]) == sorted(image_files)


def test_kedro_viz_build_shows_the_pipelines(tmp_path):
    """`kedro viz build` (reads KEDRO_ENV, no --env option) in a copy of the project."""
    copy_project(tmp_path)
    subprocess.run(
        [KEDRO, "viz", "build"],
        cwd=tmp_path,
        check=True,
        env={**os.environ, "KEDRO_ENV": "local", "KEDRO_DISABLE_TELEMETRY": "true"},
    )
    assert (tmp_path / "build" / "index.html").is_file()
    graph = json.loads((tmp_path / "build" / "api" / "main").read_text())
    assert {"build_image_table", "featurize_images", "fit_pca", "project_features"} <= {
        node["name"] for node in graph["nodes"] if node["type"] == "task"
    }
    assert set(DATASETS) <= {node["name"] for node in graph["nodes"] if node["type"] == "data"}
    assert {"ingestion", "featurization", "reduction"} <= {p["id"] for p in graph["pipelines"]}
