"""Parameters: one typed model per pipeline, each problem named in one line."""

import pytest

from fruits.params import ClassificationParams, FeaturizationParams, ParameterError, ReductionParams

FEATURIZATION = {"runtime": "tflite", "input_size": 224, "batch_size": 1,
                 "images_per_partition": 4096, "threads_per_worker": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"runtime": "onnx"}, "featurization.runtime='onnx': Input should be 'tflite' or 'keras'"),
        ({"input_size": 200}, "featurization.input_size=200: Input should be 96, 128, 160, 192"),
        ({"input_size": True}, "featurization.input_size=True"),
        ({"threads_per_worker": 0}, "featurization.threads_per_worker=0: Input should be greater"),
        ({"images_per_partition": "many"}, "featurization.images_per_partition='many'"),
        ({"backbone": "resnet50"}, "unknown parameter featurization.backbone"),
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
        "unknown parameter featurization.typo: remove it or fix its spelling"
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
            "elastic_net_param": 0,
            "max_iter": 10,
            "train_ratio": 0.8,
            "seed": 1,
            "refit": "on_change",
        }  # fmt: skip
    )
    assert params.settings == {
        "train_split": "Training", "reg_params": [0.01, 1.0], "elastic_net_param": 0.0,
        "max_iter": 10, "train_ratio": 0.8, "seed": 1,
    }  # fmt: skip
