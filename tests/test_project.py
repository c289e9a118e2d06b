"""The project as a whole: registry, configuration, the `kedro` CLI and kedro-viz."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.validation import TypeExtractor
from pydantic import BaseModel

from tests.conftest import REPO, WEIGHTS_PARAMS, copy_real_images
from tests.helpers import local_path, read_delta

KEDRO = str(Path(sys.executable).with_name("kedro"))
PIPELINES = ["ingestion", "featurization", "reduction", "classification", "reporting"]
DATASETS = [
    "raw_images", "images", "backbone_weights", "exported_backbone", "image_features",
    "previous_image_feature_store", "image_feature_store", "rejected_images", "previous_images",
    "previous_pca_features", "image_table_changes", "table_versions", "featurization_report",
    "previous_featurization_report",
    "pca_model", "pca_features", "explained_variance", "scree_plot",
    "fruit_classifier", "classifier_training", "classification_metrics",
    "sample_images_plot", "pca_scatter_plot", "confusion_matrix_plot",
]  # fmt: skip


def test_pipelines_registered_and_run_together_by_default(all_pipelines):
    pipelines = all_pipelines
    assert set(PIPELINES) == set(pipelines) - {"__default__"}
    default_nodes = {node.name for node in pipelines["__default__"].nodes}
    for name in PIPELINES:
        assert {node.name for node in pipelines[name].nodes} <= default_nodes
    assert set(pipelines["__default__"].datasets()) >= set(DATASETS)


def test_every_pipeline_has_its_parameters_file():
    for name in PIPELINES:
        assert (REPO / "conf" / "base" / f"parameters_{name}.yml").is_file()


def test_every_parameter_input_is_one_validated_model(all_pipelines):
    """Kedro validates a node's ``params:`` input when the node types it: every one is typed."""
    pipelines = all_pipelines
    required = TypeExtractor(dict(pipelines)).extract_types_from_pipelines()
    inputs = {
        name.removeprefix("params:")
        for pipeline in pipelines.values()
        for name in pipeline.inputs()
        if name.startswith("params:")
    }
    assert inputs == set(required)
    assert all(issubclass(model, BaseModel) for model in required.values())


@pytest.mark.pipeline
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
    images = read_delta(tmp_path / "out" / "02_intermediate" / "images")
    assert sorted(local_path(uri) for uri in images["path"]) == sorted(image_files)
