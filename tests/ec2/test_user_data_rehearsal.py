"""The EC2 path, rehearsed: the user data `fruits-ec2 run` renders, run by bash on this machine.

What needs a real EC2 host is stubbed, and only that: the package manager (`dnf`: Java 17
and Python 3.11 are already here), `shutdown` (recorded), and the instance metadata (the
credentials come from the environment instead of the instance profile). S3 is a moto
server on 127.0.0.1: the AWS CLI and s3fs reach it through AWS_ENDPOINT_URL, S3A through
Spark's own spark-defaults.conf (SPARK_CONF_DIR). The artifacts are the real ones
(`kedro package`, the lock's pins with their hashes, the S3 jars of .jars/).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import s3fs

from fruits.apps import artifacts, ec2
from tests.conftest import (
    PIP_WITHOUT_BYTECODE,
    REHEARSAL_IMAGES,
    REHEARSAL_JVM_OPTIONS,
    REPO,
    WEIGHTS_FILE,
    copy_project,
)
from tests.helpers import by_image, read_delta, read_delta_folder

pytestmark = pytest.mark.ec2

BUCKET = "fruits-ec2-rehearsal"
PREFIX = "eu/fruits"
BIN = Path(sys.executable).parent
# The instance reads the offline copy of the weights (no machine here has the official file).
WEIGHTS_PARAM = f"weights_source=s3a://{BUCKET}/{PREFIX}/models/{WEIGHTS_FILE.name}"


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> ec2.InstanceSpec:
    project = copy_project(tmp_path_factory.mktemp("project"))
    # The jars `make setup` fetched, as in the working copy a user launches from.
    shutil.copytree(REPO / ".jars", project / ".jars", ignore=shutil.ignore_patterns("yarn"))
    return ec2.InstanceSpec(
        bucket=BUCKET, prefix=PREFIX, extra_params=WEIGHTS_PARAM, timeout_minutes=30,
        project_dir=project,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bucket(s3_server, spec, rehearsal_images, tmp_path_factory):
    """What `fruits-ec2 run` uploads (the real artifacts), plus the images and the weights."""
    s3 = s3_server.client()
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    built = ec2.build_artifacts(spec.project_dir, tmp_path_factory.mktemp("artifacts"))
    artifacts.upload_artifacts(s3, built, spec, spec.spark_settings)
    for image in sorted(rehearsal_images.rglob("*.jpg")):
        key = f"{PREFIX}/raw/{image.relative_to(rehearsal_images).as_posix()}"
        s3.upload_file(str(image), BUCKET, key)
    s3.upload_file(str(WEIGHTS_FILE), BUCKET, f"{PREFIX}/models/{WEIGHTS_FILE.name}")
    return s3_server


@pytest.fixture(scope="module")
def host(bucket, tmp_path_factory) -> Path:
    """The stand-in for the instance: stubs of `dnf` and `shutdown`, and Spark's defaults."""
    root = tmp_path_factory.mktemp("host")
    stubs = root / "stubs"
    stubs.mkdir()
    for name in ("dnf", "shutdown"):
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho "$*" >> "{root}/{name}.calls"\n')
        stub.chmod(0o755)
    spark_conf = root / "spark-conf"
    spark_conf.mkdir()
    (spark_conf / "spark-defaults.conf").write_text(
        f"spark.hadoop.fs.s3a.endpoint {bucket.endpoint}\n"
        "spark.hadoop.fs.s3a.path.style.access true\n"
        "spark.hadoop.fs.s3a.connection.ssl.enabled false\n"
        f"spark.driver.extraJavaOptions {REHEARSAL_JVM_OPTIONS}\n"
    )
    return root


def run_user_data(
    spec: ec2.InstanceSpec, host: Path, bucket, meanwhile: Callable[[], object] = lambda: None
) -> tuple[subprocess.CompletedProcess, float]:
    """The rendered user data, run by bash as cloud-init would; ``meanwhile()`` runs while it
    does (its pip install is minutes on one core)."""
    script = host / f"user-data-{spec.run_id}.sh"
    script.write_text(
        ec2.render_user_data(spec, (spec.project_dir / ec2.USER_DATA_SCRIPT).read_text())
    )
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYSPARK")},
        **bucket.environment,
        **PIP_WITHOUT_BYTECODE,
        "PATH": f"{host / 'stubs'}:{BIN}:{os.environ['PATH']}",
        "FRUITS_HOME": str(host / "fruits"),
        "SPARK_CONF_DIR": str(host / "spark-conf"),
    }
    started = time.perf_counter()
    command = ["bash", str(script)]
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        meanwhile()
        stdout, stderr = process.communicate(timeout=1800)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    return result, time.perf_counter() - started


def processes_left_by(host: Path) -> list[str]:
    """Command lines of the processes still running with this host's FRUITS_HOME."""
    marker = f"FRUITS_HOME={host / 'fruits'}".encode()
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "environ").read_bytes().split(b"\0"):
                left.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return left


@pytest.fixture(scope="module")
def instance_run(spec, host, bucket, request):
    # The local run the outputs are compared with, made while the instance installs.
    result, seconds = run_user_data(
        spec, host, bucket, meanwhile=lambda: request.getfixturevalue("rehearsal_local_run")
    )
    print(f"user data run: {seconds:.0f} s")  # noqa: T201 - the rehearsal's time, with -s
    return result


def s3_text(key: str) -> str:
    with s3fs.S3FileSystem().open(f"{BUCKET}/{key}", "rb") as handle:
        return handle.read().decode()


def read_s3_delta(relative: str) -> pd.DataFrame:
    return read_delta_folder(s3fs.S3FileSystem(), f"{BUCKET}/{PREFIX}/data/{relative}")


def test_the_user_data_installs_runs_and_shuts_down(instance_run, spec, host):
    assert instance_run.returncode == 0, instance_run.stdout[-4000:] + instance_run.stderr[-4000:]
    assert "java-17-amazon-corretto-headless python3.11" in (host / "dnf.calls").read_text()
    # The safety timeout first, then the shutdown at the end of the run.
    calls = (host / "shutdown.calls").read_text().splitlines()
    assert calls[0].startswith(f"-h +{spec.timeout_minutes + 10} ") and calls[-1] == "-h now"
    status = json.loads(s3_text(f"{spec.run_key}/status.json"))
    assert (status["state"], status["exit_code"]) == ("succeeded", 0)
    log = s3_text(f"{spec.run_key}/run.log")
    assert "kedro run --env ec2" in log and "run ended with exit code 0" in log
    assert "Run summary: 48 image files" in log  # the run's own last line (fruits.hooks)
    # Nothing outlives the script (the log uploader's `sleep` held the console open).
    assert processes_left_by(host) == []


def test_outputs_on_s3_equal_a_local_run(instance_run, rehearsal_local_run, rehearsal_images):
    for relative, column in [
        ("04_feature/image_features", "features"),
        ("05_model_input/pca_features", "pca_features"),
    ]:
        on_s3 = by_image(read_s3_delta(relative), "raw")
        local = by_image(read_delta(rehearsal_local_run / relative), rehearsal_images.name)
        assert len(on_s3) == len(local) == REHEARSAL_IMAGES
        assert list(on_s3["image"]) == list(local["image"])
        assert list(on_s3["label"]) == list(local["label"])
        np.testing.assert_allclose(
            np.stack(on_s3[column]), np.stack(local[column]), atol=1e-5, rtol=0
        )
    for report in ("explained_variance.json", "classification_metrics.json"):
        on_s3 = json.loads(s3_text(f"{PREFIX}/data/08_reporting/{report}"))
        local = json.loads((rehearsal_local_run / "08_reporting" / report).read_text())
        for key in ("k", "accuracy", "macro_f1", "n_test_images"):
            if key in local:
                assert on_s3[key] == pytest.approx(local[key], abs=1e-9), (report, key)


def test_spark_wrote_through_the_s3a_magic_committer(instance_run):
    # Delta writes its tables' files itself; the models' Parquet goes through the committer.
    [model_data] = s3fs.S3FileSystem().glob(
        f"{BUCKET}/{PREFIX}/data/06_models/pca_model/stages/*/data/_SUCCESS"
    )
    success = json.loads(s3_text(model_data.split("/", 1)[1]))
    assert success["committer"] == "magic"
    # Nothing of the committer's pending uploads is left in the bucket.
    assert not s3fs.S3FileSystem().glob(f"{BUCKET}/{PREFIX}/data/**/__magic*")


def test_a_failing_run_still_uploads_its_log_and_shuts_down(instance_run, spec, host, bucket):
    failing = replace(
        spec, run_id="20990101T000000Z",
        extra_params=f"{WEIGHTS_PARAM},raw_images_path=s3a://{BUCKET}/{PREFIX}/nowhere",
    )  # fmt: skip
    result, _ = run_user_data(failing, host, bucket)
    assert result.returncode == 2, result.stdout[-3000:]
    status = json.loads(s3_text(f"{failing.run_key}/status.json"))
    assert (status["state"], status["exit_code"]) == ("failed", 2)
    log = s3_text(f"{failing.run_key}/run.log")
    assert f"Raw image folder s3a://{BUCKET}/{PREFIX}/nowhere does not exist" in log
    assert "run ended with exit code 2" in log
    assert (host / "shutdown.calls").read_text().splitlines()[-1] == "-h now"
