"""Bad inputs and settings: one line naming the input and the fix, exit 2, nothing written."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kedro.validation import ParameterValidationError

from fruits.cli import user_errors
from fruits.errors import FruitsInputError
from tests.conftest import DELTA_JARS, REPO, S3A_JARS, WEIGHTS_PARAMS, copy_real_images, run_project

pytestmark = pytest.mark.pipeline

KEDRO = str(Path(sys.executable).with_name("kedro"))


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    copy_real_images(folder, ["Kiwi", "Lemon"], {"Training": 2, "Test": 1})
    return folder


def _cases(raw_dir: Path, tmp: Path) -> dict[str, tuple[dict, str]]:
    """Run-time params that break one thing each, and the message that must name it."""
    (tmp / "empty" / "Training" / "Kiwi").mkdir(parents=True)
    (tmp / "empty" / "Training" / "Kiwi" / "README.txt").write_text("no images here")
    (tmp / "not_weights.h5").write_text("<html>a login page saved as the weights</html>")
    ok = {"raw_images_path": str(raw_dir), **WEIGHTS_PARAMS}
    return {
        "raw root missing": (
            {**ok, "raw_images_path": str(tmp / "nowhere")},
            f"Raw image folder {tmp / 'nowhere'} does not exist",
        ),
        "raw root without images": (
            {**ok, "raw_images_path": str(tmp / "empty")},
            "holds no image files",
        ),
        "weights missing": (
            {**ok, "weights_source": str(tmp / "absent.h5")},
            f"Weights file {tmp / 'absent.h5'} does not exist",
        ),
        "weights unreadable": (
            {**ok, "weights_source": str(tmp / "not_weights.h5"), "weights_sha256": ""},
            "is not a readable MobileNetV2 no-top Keras .h5 file",
        ),
        "weights sha256 mismatch": (
            {**ok, "weights_sha256": "ab" * 32},
            "does not match the expected sha256",
        ),
        "variance target above 1": (
            {**ok, "reduction.variance_target": 1.5},
            "reduction.variance_target=1.5: Input should be less than or equal to 1",
        ),
        "variance target zero": (
            {**ok, "reduction.variance_target": 0},
            "reduction.variance_target=0: Input should be greater than 0",
        ),
        "k above the features": (
            {**ok, "reduction.k": 5000},
            "reduction.k=5000: Input should be less than or equal to 1280",
        ),
        "misspelt parameter": (
            {**ok, "reduction.variance_targt": 0.8},
            "unknown parameter `reduction.variance_targt`; did you mean `variance_target`?",
        ),
        "misspelt run-time setting": (
            {**ok, "raw_image_path": "/data/x"},
            "unknown parameter `raw_image_path`; did you mean `raw_images_path`?",
        ),
        "misspelt section": (
            {**ok, "reducton.k": 5},
            "unknown parameter `reducton`; did you mean `reduction`?",
        ),
        "unsupported input size": (
            {**ok, "featurization.input_size": 300},
            "featurization.input_size=300: Input should be 96, 128, 160, 192 or 224",
        ),
        "batch size zero": (
            {**ok, "featurization.batch_size": 0},
            "featurization.batch_size=0: Input should be greater than or equal to 1",
        ),
        "no regularization to compare": (
            {**ok, "classification.reg_params": []},
            "classification.reg_params=[]: List should have at least 1 item after validation, "
            "not 0",
        ),
        "train ratio above 1": (
            {**ok, "classification.train_ratio": 1.5},
            "classification.train_ratio=1.5: Input should be less than 1",
        ),
    }


CASE_NAMES = [
    "raw root missing", "raw root without images", "weights missing", "weights unreadable",
    "weights sha256 mismatch", "variance target above 1", "variance target zero",
    "k above the features", "misspelt parameter", "misspelt run-time setting", "misspelt section",
    "unsupported input size", "batch size zero",
    "no regularization to compare", "train ratio above 1",
]  # fmt: skip


@pytest.mark.parametrize("case", CASE_NAMES)
def test_refused_before_anything_is_written(spark, raw, tmp_path, case):
    params, message = _cases(raw, tmp_path)[case]
    data_root = tmp_path / "data"
    with pytest.raises((FruitsInputError, ParameterValidationError)) as refused:
        run_project(data_root=str(data_root), **params)
    [line] = user_errors(refused.value)
    assert message in line
    assert not data_root.exists() or not any(data_root.rglob("*"))


def test_k_above_the_number_of_images_names_both_counts(spark, raw, tmp_path):
    with pytest.raises(FruitsInputError, match=r"reduction.k=100 is more than the 6 images"):
        run_project(
            pipelines=["ingestion", "featurization", "reduction"],
            data_root=str(tmp_path / "data"),
            raw_images_path=str(raw),
            **{**WEIGHTS_PARAMS, "reduction.k": 100},
        )
    # The reduction wrote nothing; the features before it are complete outputs.
    assert not (tmp_path / "data" / "06_models" / "pca_model").exists()


@pytest.mark.parametrize(
    "case",
    [
        "raw root missing",
        "weights sha256 mismatch",
        "misspelt parameter",
        "misspelt run-time setting",
    ],
)
def test_cli_prints_one_line_and_exits_2(raw, tmp_path, case):
    params, message = _cases(raw, tmp_path)[case]
    params = {**params, "data_root": tmp_path / "data"}
    result = subprocess.run(
        [KEDRO, "run", "--env", "local",
         "--params", ",".join(f"{key}={value}" for key, value in params.items())],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("fruits: error:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()


def test_ctrl_c_stops_the_run_with_one_line_and_130(tmp_path):
    """Ctrl-C in a terminal (SIGINT to the whole process group) during featurization."""
    raw = tmp_path / "raw"
    copy_real_images(raw, ["Kiwi", "Lemon", "Banana"], {"Training": 80, "Test": 20})
    process = subprocess.Popen(
        [KEDRO, "run", "--env", "local", "--params",
         f"raw_images_path={raw},data_root={tmp_path / 'data'},"
         f"weights_source={WEIGHTS_PARAMS['weights_source']}"],
        cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    # Each Python worker says so when it starts embedding (fruits.vision.embedder).
    while not any("fruits: embedder built" in line for line in lines):
        assert process.poll() is None and time.monotonic() < deadline, "".join(lines)[-2000:]
        time.sleep(0.05)
    before = len(lines)
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=120)
    reader.join(timeout=10)
    # Python workers that started before the interrupt may still print their start-up lines
    # (ours, TFLite's) after the run's last one: they are not the run's messages.
    worker_lines = ("embedder built", "XNNPACK delegate")
    after = [line for line in lines[before:] if not any(text in line for text in worker_lines)]
    assert process.returncode == 130, "".join(after)[-3000:]
    assert after[-1].startswith("fruits: interrupted: outputs already written are complete")
    assert len(after) <= 5, "".join(after)[-3000:]  # no trace of the cancelled Spark jobs


def test_an_object_store_that_never_answers_is_one_line_in_seconds(raw, tmp_path, silent_endpoint):
    """S3A jars on a laptop, no network: S3A alone retries silently for ~280 s here."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    spark_yml = conf / "local" / "spark.yml"
    # S3A's jars with Delta's (conf/local's own spark.jars line, replaced).
    kept = [
        line for line in spark_yml.read_text().splitlines() if not line.startswith("spark.jars")
    ]
    spark_yml.write_text("\n".join(kept) + "\n")
    with spark_yml.open("a") as spark_yml:
        spark_yml.write(
            f"\nspark.jars: {','.join(str(jar) for jar in [*S3A_JARS, *DELTA_JARS])}\n"
            f"spark.hadoop.fs.s3a.endpoint: {silent_endpoint}\n"
            "spark.hadoop.fs.s3a.path.style.access: true\n"
        )
    params = {
        "raw_images_path": "s3a://fruits-eu-data/raw",
        "data_root": tmp_path / "data",
        **WEIGHTS_PARAMS,
    }
    result = subprocess.run(
        [KEDRO, "run", "--env", "local", "--conf-source", str(conf),
         "--params", ",".join(f"{key}={value}" for key, value in params.items())],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=150,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "AWS_ACCESS_KEY_ID": "offline",
             "AWS_SECRET_ACCESS_KEY": "offline"},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("fruits: error:")]
    assert errors == [
        "fruits: error: s3a://fruits-eu-data/raw did not answer within 30 s: check the network, "
        "the storage endpoint and the credentials, then run again."
    ]
    assert "Traceback" not in result.stderr and not (tmp_path / "data").exists()


def test_weights_on_an_object_store_that_never_answers_is_one_line(silent_endpoint, monkeypatch):
    """s3fs alone retried for ~160 s here (botocore's and its own retries)."""
    from fruits.datasets import BackboneWeightsDataset, filesystems  # noqa: PLC0415

    monkeypatch.setattr(filesystems, "STORAGE_ANSWER_SECONDS", 3)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "offline",
        "AWS_SECRET_ACCESS_KEY": "offline",
        "AWS_ENDPOINT_URL": silent_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    weights = BackboneWeightsDataset(source="s3a://fruits-eu-data/models/w.h5")
    with pytest.raises(FruitsInputError, match=r"^s3a://fruits-eu-data/models/w.h5 did not answer"):
        weights.verify()
    s3_filesystem, _ = filesystems.filesystem("s3a://fruits-eu-data/models/w.h5")
    assert (
        s3_filesystem.config_kwargs["read_timeout"] == filesystems.S3_CLIENT_CONFIG["read_timeout"]
    )
