"""Parameters: one typed model per pipeline, each problem named in one line."""

import shutil

import pytest

from fruits.params import (
    ClassificationParams,
    FeaturizationParams,
    IngestionParams,
    ParameterError,
    ReductionParams,
)
from tests.conftest import REPO

FEATURIZATION = {"runtime": "tflite", "input_size": 224, "precision": "float32",
                 "calibration_images": 100, "batch_size": 1, "images_per_partition": 4096,
                 "threads_per_worker": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"runtime": "onnx"}, "featurization.runtime='onnx': Input should be 'tflite' or 'keras'"),
        ({"input_size": 200}, "featurization.input_size=200: Input should be 96, 128, 160, 192"),
        ({"input_size": True}, "featurization.input_size=True"),
        ({"threads_per_worker": 0}, "featurization.threads_per_worker=0: Input should be greater"),
        ({"images_per_partition": "many"}, "featurization.images_per_partition='many'"),
        ({"backbone": "resnet50"}, "unknown parameter `featurization.backbone`"),
        ({"precision": "float16"}, "featurization.precision='float16': Input should be"),
        ({"precision": "bfloat16"}, "featurization.precision='bfloat16': Value error, no runtime"),
        (
            {"runtime": "keras", "precision": "int8"},
            "featurization.precision='int8': Value error, int8 needs runtime tflite",
        ),
        ({"precision": "int8", "calibration_images": 0}, "featurization.calibration_images=0"),
        (
            {"batch_sise": 4},
            "unknown parameter `featurization.batch_sise`; did you mean `batch_size`?",
        ),
    ],
)
def test_a_bad_featurization_setting_is_named(changes, message):
    with pytest.raises(ParameterError) as refused:
        FeaturizationParams.model_validate(FEATURIZATION | changes)
    assert message in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1


def test_every_problem_is_reported_at_once():
    with pytest.raises(ParameterError) as refused:
        FeaturizationParams.model_validate(FEATURIZATION | {"batch_size": 0, "typo": 1})
    assert str(refused.value) == (
        "featurization.batch_size=0: Input should be greater than or equal to 1; "
        "unknown parameter `featurization.typo`: remove it or fix its spelling"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"variance_target": 1.5}, "reduction.variance_target=1.5"),
        ({"variance_target": 0}, "reduction.variance_target=0: Input should be greater than 0"),
        ({"variance_target": "high"}, "reduction.variance_target='high'"),
        ({"k": 1281}, "reduction.k=1281: Input should be less than or equal to 1280"),
        ({"k": 2.5}, "reduction.k=2.5"),
        ({"refit": "sometimes"}, "reduction.refit='sometimes': Input should be 'on_change'"),
    ],
)
def test_a_bad_reduction_setting_is_named(changes, message):
    valid = {"standardize": False, "variance_target": 0.9, "k": None, "refit": "on_change"}
    with pytest.raises(ParameterError, match=message.replace("(", r"\(")):
        ReductionParams.model_validate(valid | changes)


def test_the_classifier_settings_leave_out_what_does_not_change_the_model():
    params = ClassificationParams.model_validate(
        {
            "train_split": "Training",
            "test_split": "Test",
            "reg_params": [0.01, 1],
            "search_parallelism": 2,
            "elastic_net_param": 0,
            "max_iter": 10,
            "tol": 1e-4,
            "train_ratio": 0.8,
            "seed": 1,
            "refit": "on_change",
        }  # fmt: skip
    )
    assert params.settings == {
        "train_split": "Training", "reg_params": [0.01, 1.0], "elastic_net_param": 0.0,
        "max_iter": 10, "tol": 1e-4, "train_ratio": 0.8, "seed": 1,
    }  # fmt: skip


INGESTION = {"split_folders": ["Training", "Test"], "unsplit_test_share": 0.2,
             "unsplit_train_split": "Training", "unsplit_test_split": "Test"}  # fmt: skip


@pytest.mark.parametrize(
    ("share", "message"),
    [
        (0, "ingestion.unsplit_test_share=0: Input should be greater than 0"),
        (0.0, "ingestion.unsplit_test_share=0.0: Input should be greater than 0"),
        (1, "ingestion.unsplit_test_share=1: Input should be less than 1"),
        (1.5, "ingestion.unsplit_test_share=1.5: Input should be less than 1"),
        (True, "ingestion.unsplit_test_share=True: Input should be a valid number"),
        ("0.2", "ingestion.unsplit_test_share='0.2': Input should be a valid number"),
        (None, "ingestion.unsplit_test_share=None: Input should be a valid number"),
    ],
)
def test_the_unsplit_test_share_is_a_fraction_strictly_between_0_and_1(share, message):
    with pytest.raises(ParameterError) as refused:
        IngestionParams.model_validate(INGESTION | {"unsplit_test_share": share})
    assert str(refused.value) == message


def test_the_split_names_are_given_once_for_ingestion_and_classification(tmp_path):
    """Renaming the splits in globals.yml renames them in both pipelines' parameters."""
    from fruits.config import ProjectConfigLoader  # noqa: PLC0415
    from fruits.settings import CONFIG_LOADER_ARGS  # noqa: PLC0415

    conf = shutil.copytree(REPO / "conf", tmp_path / "conf")
    globals_file = conf / "base" / "globals.yml"
    text = globals_file.read_text()
    assert "\ntrain_split: Training\ntest_split: Test\n" in text
    globals_file.write_text(text.replace("\ntrain_split: Training\n", "\ntrain_split: Fit\n"))
    args = {key: value for key, value in CONFIG_LOADER_ARGS.items() if key != "default_run_env"}
    parameters = ProjectConfigLoader(str(conf), env="local", **args)["parameters"]
    ingestion = IngestionParams.model_validate(parameters["ingestion"])
    classification = ClassificationParams.model_validate(parameters["classification"])
    assert ingestion.split_folders == ["Fit", "Test"]
    assert (ingestion.unsplit_train_split, ingestion.unsplit_test_split) == ("Fit", "Test")
    assert (classification.train_split, classification.test_split) == ("Fit", "Test")
    assert ingestion.unsplit_test_share == 0.2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"elastic_net_param": 5}, "classification.elastic_net_param=5: Input should be less"),
        ({"max_iter": 0}, "classification.max_iter=0: Input should be greater than or equal to 1"),
        ({"tol": 0}, "classification.tol=0: Input should be greater than 0"),
        ({"reg_params": [-1]}, "classification.reg_params.0=-1"),
        ({"search_parallelism": 0}, "classification.search_parallelism=0: Input should be"),
    ],
)
def test_a_bad_classifier_setting_is_named(changes, message):
    valid = {"train_split": "Training", "test_split": "Test", "reg_params": [0.01],
             "search_parallelism": 1, "elastic_net_param": 0.0, "max_iter": 10,
             "tol": 1e-4, "train_ratio": 0.8, "seed": 1, "refit": "always"}  # fmt: skip
    with pytest.raises(ParameterError, match=message):
        ClassificationParams.model_validate(valid | changes)


def test_images_per_partition_zero_is_refused():
    with pytest.raises(ParameterError, match="featurization.images_per_partition=0"):
        FeaturizationParams.model_validate(FEATURIZATION | {"images_per_partition": 0})
