"""A folder without split folders: `kedro run` splits it, trains and scores the classifier."""

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import FRUITS_360, WEIGHTS_PARAMS, run_project
from tests.helpers import local_path, split_by_hash

CLASSES = ["Banana", "Kiwi", "Strawberry"]
PER_CLASS = 12


@pytest.mark.pipeline
def test_default_run_trains_and_scores_on_a_folder_without_split_folders(spark, tmp_path):
    raw_images, data_root = tmp_path / "raw", tmp_path / "data"
    files = []
    for label in CLASSES:
        (raw_images / label).mkdir(parents=True)
        for source in sorted((FRUITS_360 / "Training" / label).iterdir())[:PER_CLASS]:
            files.append(Path(shutil.copy2(source, raw_images / label / source.name)))
    expected = {path: split_by_hash(path.read_bytes()) for path in files}
    assert set(expected.values()) == {"Training", "Test"}

    run_project(raw_images_path=str(raw_images), data_root=str(data_root), **WEIGHTS_PARAMS)

    images = (
        spark.read.format("delta")
        .load(str(data_root / "02_intermediate" / "images"))
        .select("path", "split")
    )
    assert {local_path(row.path): row.split for row in images.collect()} == expected
    metrics = json.loads((data_root / "08_reporting" / "classification_metrics.json").read_text())
    assert metrics["test_split"] == "Test"
    assert metrics["n_test_images"] == list(expected.values()).count("Test")
    assert metrics["classifier"]["train_split"] == "Training"
    assert metrics["classifier"]["n_classes"] == len(CLASSES)
    assert metrics["accuracy"] >= 0.8  # three distinct fruits (5 test images here)
