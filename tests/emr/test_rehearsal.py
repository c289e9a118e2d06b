"""The EMR path, rehearsed end to end: packaged job, spark-submit, S3 API, `--env emr`.

Only the S3 endpoint (path-style, a moto server on 127.0.0.1) and the credentials are
overridden; the weights are the offline copy, uploaded to the bucket (no machine here can
fetch the official file the emr environment names).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import s3fs

from fruits.datasets.file_listing import list_files
from tests.conftest import (
    DELTA_JARS,
    IMAGE_GLOB,
    REHEARSAL_IMAGES,
    REHEARSAL_JVM_OPTIONS,
    REPO,
    S3A_JARS,
    WEIGHTS_FILE,
    copy_project,
)
from tests.helpers import by_image, file_states, listed_states, read_delta, read_delta_folder

pytestmark = pytest.mark.emr

BUCKET = "fruits-rehearsal"
PREFIX = "eu/fruits"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def packaged_project(tmp_path_factory) -> Path:
    """`kedro package` on a copy of the project: the wheel and the conf tarball."""
    project = copy_project(tmp_path_factory.mktemp("project"))
    subprocess.run([BIN / "kedro", "package"], cwd=project, check=True, capture_output=True)
    return project / "dist"


@pytest.fixture(scope="module")
def emr_run(s3_server, packaged_project, rehearsal_images, tmp_path_factory):
    """Upload images and weights, then run the packaged job with spark-submit --env emr."""
    for jar in S3A_JARS:
        assert jar.is_file(), f"{jar} missing: run `make setup`, which fetches it with Maven."
    assert DELTA_JARS, "Delta Lake's jars missing: run `make setup`, which fetches them."
    s3 = s3_server.client()
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/logs/spark-events/")
    for image in sorted(rehearsal_images.rglob("*.jpg")):
        key = f"{PREFIX}/raw/{image.relative_to(rehearsal_images).as_posix()}"
        s3.upload_file(str(image), BUCKET, key)
    # Under its own name: the weights dataset checks it against its known sha256.
    weights_key = f"{PREFIX}/models/{WEIGHTS_FILE.name}"
    s3.upload_file(str(WEIGHTS_FILE), BUCKET, weights_key)

    return submit(s3_server, packaged_project, tmp_path_factory.mktemp("emr_driver"))


def submit(s3_server, packaged_project: Path, workdir: Path) -> subprocess.CompletedProcess:
    """The packaged job through spark-submit --env emr, as EMR's step runs it."""
    wheel = next(packaged_project.glob("fruits-*.whl"))
    weights_key = f"{PREFIX}/models/{WEIGHTS_FILE.name}"
    params = {
        "data_root": f"s3a://{BUCKET}/{PREFIX}/data",
        "raw_images_path": f"s3a://{BUCKET}/{PREFIX}/raw",
        "weights_source": f"s3a://{BUCKET}/{weights_key}",
    }
    command = [
        str(BIN / "spark-submit"),
        "--master", "local[2]",
        # EMR has S3 (EMRFS) and Delta (delta-defaults) on its classpath; here, their jars.
        "--jars", ",".join(str(jar) for jar in [*S3A_JARS, *DELTA_JARS]),
        "--py-files", str(wheel),
        "--conf", f"spark.hadoop.fs.s3a.endpoint={s3_server.endpoint}",
        "--conf", "spark.hadoop.fs.s3a.path.style.access=true",
        # The event log folder `fruits-emr` creates under the bucket and prefix it is given.
        "--conf", f"spark.eventLog.dir=s3a://{BUCKET}/{PREFIX}/logs/spark-events",
        "--driver-java-options", REHEARSAL_JVM_OPTIONS,
        str(REPO / "bootstrap" / "emr_step.py"),
        "--env", "emr",
        "--conf-source", str(packaged_project / "conf-fruits.tar.gz"),
        "--params", ",".join(f"{key}={value}" for key, value in params.items()),
    ]  # fmt: skip
    result = subprocess.run(
        command,
        check=False,
        cwd=workdir,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable, "KEDRO_DISABLE_TELEMETRY": "true"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


@pytest.fixture(scope="module")
def emr_rerun(emr_run, s3_server, packaged_project, rehearsal_images, tmp_path_factory) -> dict:
    """The same job again with one new photo in the bucket: the report of that second run."""
    photo = sorted((rehearsal_images / "Training" / "Banana").iterdir())[0]
    s3_server.client().upload_file(str(photo), BUCKET, f"{PREFIX}/raw/Training/Banana/one more.jpg")
    submit(s3_server, packaged_project, tmp_path_factory.mktemp("emr_driver_again"))
    bucket = s3fs.S3FileSystem()
    bucket.invalidate_cache()  # the first run's listing and ETags are stale now
    return json.loads(bucket.cat_file(f"{BUCKET}/{PREFIX}/data/{REPORT}"))


REPORT = "08_reporting/featurization_report.json"


def read_s3_delta(relative: str) -> pd.DataFrame:
    return read_delta_folder(s3fs.S3FileSystem(), f"{BUCKET}/{PREFIX}/data/{relative}")


def test_the_packaged_wheel_ran(emr_run):
    # Rich wraps log lines: compare without whitespace.
    output = "".join((emr_run.stderr + emr_run.stdout).split())
    assert ".whl/fruits/__init__.py" in output


def test_emr_outputs_equal_a_local_run(emr_run, rehearsal_local_run, rehearsal_images):
    for relative, column in [
        ("04_feature/image_features", "features"),
        ("05_model_input/pca_features", "pca_features"),
    ]:
        on_s3 = by_image(read_s3_delta(relative), "raw")
        local = by_image(read_delta(rehearsal_local_run / relative), rehearsal_images.name)
        assert len(on_s3) == len(local) == REHEARSAL_IMAGES
        assert list(on_s3["image"]) == list(local["image"])
        assert list(on_s3["label"]) == list(local["label"])
        assert list(on_s3["split"]) == list(local["split"])
        np.testing.assert_allclose(
            np.stack(on_s3[column]), np.stack(local[column]), atol=1e-5, rtol=0
        )
    with s3fs.S3FileSystem().open(
        f"s3://{BUCKET}/{PREFIX}/data/08_reporting/explained_variance.json"
    ) as report:
        emr_report = json.load(report)
    local_report = json.loads(
        (rehearsal_local_run / "08_reporting" / "explained_variance.json").read_text()
    )
    assert emr_report["k"] == local_report["k"]
    np.testing.assert_allclose(
        emr_report["explained_variance_ratio"], local_report["explained_variance_ratio"], atol=1e-9
    )


def test_every_output_is_in_the_bucket(emr_run):
    listed = s3fs.S3FileSystem().find(f"{BUCKET}/{PREFIX}/data")
    for expected in [
        # The Delta tables' first commits.
        "02_intermediate/images/_delta_log/00000000000000000000.json",
        "04_feature/image_feature_store/_delta_log/00000000000000000000.json",
        "05_model_input/pca_features/_delta_log/00000000000000000000.json",
        "06_models/pca_model/metadata/_SUCCESS",
        "08_reporting/explained_variance.json",
        "08_reporting/scree_plot.png",
    ]:
        assert f"{BUCKET}/{PREFIX}/data/{expected}" in listed


def test_a_rerun_on_s3_reads_only_the_new_photo(emr_rerun):
    """On S3 too: the unchanged files are not downloaded, the tables are merged, not rewritten."""
    assert (emr_rerun["image_files"], emr_rerun["files_read"]) == (REHEARSAL_IMAGES + 1, 1)
    # Same bytes as an image already there: no CNN at all, one more row in the features.
    assert (emr_rerun["contents_new"], emr_rerun["contents_reused"]) == (0, REHEARSAL_IMAGES)
    tables = emr_rerun["tables"]
    assert tables["images"]["written"] == [tables["images"]["read"] + 1]
    assert tables["images"]["inserted"] == 1 and tables["image_feature_store"]["inserted"] == 0
    assert len(read_s3_delta("04_feature/image_features")) == REHEARSAL_IMAGES + 1
    # The run let go of the data root's lock.
    bucket = s3fs.S3FileSystem()
    bucket.invalidate_cache()
    assert not bucket.exists(f"{BUCKET}/{PREFIX}/data/.fruits-run.lock")


def test_the_listing_a_rerun_compares_equals_the_rows_spark_read(emr_rerun):
    """The driver's listing (s3fs: LIST requests) gives the paths, sizes and times that
    Spark's reader (S3A: a HEAD request per file) wrote into the image table, in the first
    run and the re-run."""
    listing = list_files(f"s3a://{BUCKET}/{PREFIX}/raw", IMAGE_GLOB)
    assert len(listing) == REHEARSAL_IMAGES + 1
    assert listed_states(listing) == file_states(read_s3_delta("02_intermediate/images"))


def test_fruits_serve_answers_from_the_bucket(emr_run, rehearsal_images, tmp_path):
    """`fruits-serve --env emr` reads the models the cluster wrote, from S3, through the catalog."""
    from tests.serving.conftest import start_service, stop_service  # noqa: PLC0415

    process, url = start_service(
        f"s3a://{BUCKET}/{PREFIX}/data", tmp_path / "serve.log", "--env", "emr"
    )
    try:
        photo = next((rehearsal_images / "Test" / "Banana").iterdir())
        import urllib3  # noqa: PLC0415

        response = urllib3.request(
            "POST", url + "/v1/predict", body=photo.read_bytes(),
            headers={"Content-Type": "image/jpeg"}, timeout=60,
        )  # fmt: skip
    finally:
        stop_service(process)
    assert response.status == 200, response.data
    assert json.loads(response.data)["top"][0]["label"] == "Banana"
