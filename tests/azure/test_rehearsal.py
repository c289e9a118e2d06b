"""The azure environment, rehearsed end to end against Azurite: `kedro run --env azure`.

Raw images and weights uploaded to the emulator; every pipeline runs (ingestion to
reporting); every output read back from the emulator equals a `--env local` run on the same
images. What differs from Azure, and only that: the storage endpoint (Azurite, through WASB
for Spark, see conftest), its well-known key, and the offline weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fruits.datasets.file_listing import list_files
from tests.azure.conftest import CONTAINER
from tests.conftest import IMAGE_GLOB, REHEARSAL_IMAGES, REPO, WEIGHTS_FILE
from tests.helpers import by_image, file_states, listed_states, read_delta, read_delta_folder

pytestmark = pytest.mark.azure

PREFIX = "eu/fruits"
KEDRO = str(Path(sys.executable).with_name("kedro"))


@pytest.fixture(scope="module")
def azure_run(azurite, rehearsal_images, tmp_path_factory):
    storage = azurite.filesystem()
    storage.put(str(rehearsal_images), f"{CONTAINER}/{PREFIX}/raw", recursive=True)
    storage.put(str(WEIGHTS_FILE), f"{CONTAINER}/{PREFIX}/models/{WEIGHTS_FILE.name}")
    root = azurite.root(PREFIX)
    params = {
        "data_root": f"{root}/data",
        "raw_images_path": f"{root}/raw",
        "weights_source": f"{root}/models/{WEIGHTS_FILE.name}",
    }
    spark_conf = azurite.spark_defaults(tmp_path_factory.mktemp("spark-conf"))
    started = time.perf_counter()
    result = subprocess.run(
        [KEDRO, "run", "--env", "azure",
         "--params", ",".join(f"{key}={value}" for key, value in params.items())],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=1200,
        # Not this process's own Spark gateway (PYSPARK_*): the run starts its own.
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PYSPARK")},
             "KEDRO_DISABLE_TELEMETRY": "true", "SPARK_CONF_DIR": str(spark_conf),
             "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string},
    )  # fmt: skip
    print(f"kedro run --env azure against Azurite: {time.perf_counter() - started:.0f} s")  # noqa: T201
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def read_table(storage, relative: str) -> pd.DataFrame:
    return read_delta_folder(storage, f"{CONTAINER}/{PREFIX}/data/{relative}")


def test_every_output_on_azure_storage_equals_a_local_run(
    azure_run, azurite, rehearsal_local_run, rehearsal_images
):
    storage = azurite.filesystem()
    for relative, column in [
        ("04_feature/image_features", "features"),
        ("05_model_input/pca_features", "pca_features"),
    ]:
        on_azure = by_image(read_table(storage, relative), "raw")
        local = by_image(read_delta(rehearsal_local_run / relative), rehearsal_images.name)
        assert len(on_azure) == len(local) == REHEARSAL_IMAGES
        assert list(on_azure["image"]) == list(local["image"])
        assert list(on_azure["label"]) == list(local["label"])
        assert list(on_azure["split"]) == list(local["split"])
        np.testing.assert_allclose(
            np.stack(on_azure[column]), np.stack(local[column]), atol=1e-5, rtol=0
        )
    for report, keys in [
        ("explained_variance.json", ("k", "n_images")),
        ("classification_metrics.json", ("accuracy", "macro_f1", "n_test_images")),
        ("featurization_report.json", ("image_files", "accepted", "rejected")),
    ]:
        on_azure = json.loads(storage.cat(f"{CONTAINER}/{PREFIX}/data/08_reporting/{report}"))
        local = json.loads((rehearsal_local_run / "08_reporting" / report).read_text())
        for key in keys:
            assert on_azure[key] == pytest.approx(local[key], abs=1e-9), (report, key)


def test_every_pipeline_wrote_to_azure_storage(azure_run, azurite):
    written = set(azurite.filesystem().find(f"{CONTAINER}/{PREFIX}/data"))
    for expected in [
        "02_intermediate/images/_delta_log/00000000000000000000.json",
        "04_feature/image_feature_store/_delta_log/00000000000000000000.json",
        "05_model_input/pca_features/_delta_log/00000000000000000000.json",
        "06_models/pca_model/metadata/_SUCCESS",
        "06_models/fruit_classifier/metadata/_SUCCESS",
        "06_models/backbone/backbone.json",
        "06_models/model_manifest.json",
        "08_reporting/scree_plot.png",
        "08_reporting/confusion_matrix.png",
        "08_reporting/sample_images.png",
    ]:
        assert f"{CONTAINER}/{PREFIX}/data/{expected}" in written, expected


def test_the_listing_a_rerun_compares_equals_the_rows_spark_read(azure_run, azurite):
    """The driver's listing (adlfs: LIST requests) gives the paths, sizes and times that
    Spark's reader (Hadoop's Azure connector) wrote into the image table: else a re-run
    would read every file again."""
    listing = list_files(
        f"{azurite.root(PREFIX)}/raw", IMAGE_GLOB, {"connection_string": azurite.connection_string}
    )
    table = read_table(azurite.filesystem(), "02_intermediate/images")
    assert len(listing) == REHEARSAL_IMAGES
    assert listed_states(listing) == file_states(table)
