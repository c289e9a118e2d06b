"""Bad inputs and settings: one line naming the input and the fix, exit 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fruits.errors import FruitsInputError
from tests.conftest import REPO, WEIGHTS_PARAMS, copy_real_images, run_project

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
            r"reduction.variance_target=1.5 is outside (0, 1]",
        ),
        "variance target zero": (
            {**ok, "reduction.variance_target": 0},
            r"reduction.variance_target=0 is outside (0, 1]",
        ),
        "k above the features": (
            {**ok, "reduction.k": 5000},
            "reduction.k=5000 must be null or an integer between 1 and 1280",
        ),
        "unknown backbone": (
            {**ok, "featurization.backbone": "resnet50"},
            "Unknown featurization.backbone 'resnet50'",
        ),
        "unsupported input size": (
            {**ok, "featurization.input_size": 300},
            "Invalid featurization.input_size 300",
        ),
    }


CASE_NAMES = [
    "raw root missing", "raw root without images", "weights missing", "weights unreadable",
    "weights sha256 mismatch", "variance target above 1", "variance target zero",
    "k above the features", "unknown backbone", "unsupported input size",
]  # fmt: skip


@pytest.mark.parametrize("case", CASE_NAMES)
def test_refused_before_anything_is_written(spark, raw, tmp_path, case):
    params, message = _cases(raw, tmp_path)[case]
    data_root = tmp_path / "data"
    with pytest.raises(FruitsInputError) as refused:
        run_project(data_root=str(data_root), **params)
    assert message in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1
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
    assert not (tmp_path / "data" / "06_models").exists()


@pytest.mark.parametrize(
    "case", ["raw root missing", "weights sha256 mismatch", "variance target above 1"]
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
