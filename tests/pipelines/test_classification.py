"""Classification: the classifier trained and scored by the pipeline run, and its metrics."""

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import PipelineModel
from pyspark.sql import functions as F
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from fruits.errors import FruitsInputError
from fruits.ml import classifier as classifier_module
from fruits.ml.classifier import evaluate_classifier, to_pca_vectors, train_classifier
from fruits.params import ClassificationParams
from tests.conftest import PIPELINE_CLASSES, TEST_PER_CLASS


def settings(**changes) -> ClassificationParams:
    defaults = {"train_split": "Training", "test_split": "Test", "reg_params": [0.01],
                "search_parallelism": 1, "elastic_net_param": 0.0, "max_iter": 10,
                "tol": 1e-4, "train_ratio": 0.8, "seed": 1, "refit": "always"}  # fmt: skip
    return ClassificationParams.model_validate(defaults | changes)


@pytest.fixture(scope="module")
def metrics(pipeline_run) -> dict:
    return json.loads(
        (pipeline_run.data_root / "08_reporting" / "classification_metrics.json").read_text()
    )


@pytest.fixture(scope="module")
def test_predictions(spark, pipeline_run) -> pd.DataFrame:
    classifier = PipelineModel.load(str(pipeline_run.data_root / "06_models" / "fruit_classifier"))
    pca_features = spark.read.format("delta").load(
        str(pipeline_run.data_root / "05_model_input" / "pca_features")
    )
    scored = classifier.transform(to_pca_vectors(pca_features.where("split = 'Test'")))
    return scored.select("path", "label", "predicted_label").toPandas()


@pytest.mark.pipeline
def test_metrics_cover_the_test_split(metrics):
    assert metrics["n_test_images"] == len(PIPELINE_CLASSES) * TEST_PER_CLASS
    assert metrics["labels"] == sorted(PIPELINE_CLASSES)
    assert set(metrics["per_class"]) == set(PIPELINE_CLASSES)
    assert all(entry["support"] == TEST_PER_CLASS for entry in metrics["per_class"].values())


@pytest.mark.pipeline
def test_metrics_equal_scikit_learn_on_the_predictions(metrics, test_predictions):
    truth, predicted = test_predictions["label"], test_predictions["predicted_label"]
    labels = metrics["labels"]
    assert metrics["accuracy"] == pytest.approx((truth == predicted).mean())
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)
    )
    np.testing.assert_array_equal(
        metrics["confusion_matrix"], confusion_matrix(truth, predicted, labels=labels)
    )
    precision = precision_score(truth, predicted, labels=labels, average=None, zero_division=0)
    recall = recall_score(truth, predicted, labels=labels, average=None, zero_division=0)
    for i, label in enumerate(labels):
        assert metrics["per_class"][label]["precision"] == pytest.approx(precision[i])
        assert metrics["per_class"][label]["recall"] == pytest.approx(recall[i])
    wrong = test_predictions[truth != predicted]
    assert sorted(e["path"] for e in metrics["errors"]) == sorted(wrong["path"])


@pytest.mark.pipeline
def test_classifier_learns_the_fruits(metrics):
    """8 training images per class already separate 22 real classes well."""
    assert metrics["accuracy"] >= 0.9
    tuning = metrics["classifier"]
    assert tuning["reg_param"] in [float(value) for value in tuning["validation_accuracy"]]
    assert tuning["validation_accuracy"][str(tuning["reg_param"])] == max(
        tuning["validation_accuracy"].values()
    )


@pytest.mark.pipeline
def test_classifier_predicts_labels_and_probabilities(spark, pipeline_run):
    classifier = PipelineModel.load(str(pipeline_run.data_root / "06_models" / "fruit_classifier"))
    assert classifier.stages[-1].getLabels() == sorted(PIPELINE_CLASSES)
    pca_features = spark.read.format("delta").load(
        str(pipeline_run.data_root / "05_model_input" / "pca_features")
    )
    row = classifier.transform(to_pca_vectors(pca_features.limit(1))).first()
    assert row.probability.toArray().sum() == pytest.approx(1.0)
    assert row.predicted_label == classifier.stages[-1].getLabels()[int(row.prediction)]


def test_missing_splits_are_named(spark):
    rows = [(f"{label}{i}", label, None, [float(i), float(label == "Kiwi")])
            for i in range(10) for label in ("Kiwi", "Lemon")]  # fmt: skip
    frame = spark.createDataFrame(
        rows, "path string, label string, split string, pca_features array<float>"
    )
    with pytest.raises(ValueError, match="No image in split 'Training'"):
        train_classifier(frame, settings())
    labelled = frame.selectExpr("path", "label", "'Training' AS split", "pca_features")
    classifier, tuning = train_classifier(labelled, settings(train_ratio=0.7))
    with pytest.raises(ValueError, match="No image in split 'Test'"):
        evaluate_classifier(labelled, classifier, tuning, "Test")


class _Predicts:
    """A fitted classifier's interface (``transform``, its labels): predicts Lemon for
    the paths given, the true label for the others."""

    def __init__(self, lemons: list[str]):
        self.lemons = lemons
        self.stages = [SimpleNamespace(getLabels=lambda: ["Kiwi", "Lemon", "Mango"])]

    def transform(self, frame):
        lemon = F.col("path").isin(self.lemons)
        return frame.withColumn("predicted_label", F.when(lemon, "Lemon").otherwise(F.col("label")))


def test_the_first_errors_by_path_are_listed_with_their_labels(spark, monkeypatch):
    rows = [(f"{label}/{i}", label, "Test", [0.0]) for i in range(4) for label in ("Kiwi", "Mango")]
    frame = spark.createDataFrame(
        rows, "path string, label string, split string, pca_features array<float>"
    )
    wrong = ["Mango/3", "Kiwi/2", "Mango/0", "Kiwi/1"]
    monkeypatch.setattr(classifier_module, "MAX_LISTED_ERRORS", 3)
    metrics = evaluate_classifier(frame, _Predicts(wrong), {}, "Test")
    assert metrics["errors"] == [
        {"path": "Kiwi/1", "label": "Kiwi", "predicted": "Lemon"},
        {"path": "Kiwi/2", "label": "Kiwi", "predicted": "Lemon"},
        {"path": "Mango/0", "label": "Mango", "predicted": "Lemon"},
    ]
    assert metrics["labels"] == ["Kiwi", "Lemon", "Mango"]
    assert metrics["confusion_matrix"] == [[2, 2, 0], [0, 0, 0], [0, 2, 2]]
    assert metrics["accuracy"] == 0.5


def test_one_class_is_refused_at_training(spark, pipeline_run):
    """A one-class model would answer NaN probabilities: refused with a line saying why."""
    pca_features = spark.read.format("delta").load(
        str(pipeline_run.data_root / "05_model_input" / "pca_features")
    )
    bananas = pca_features.where("label = 'Banana'")
    with pytest.raises(FruitsInputError, match=r"Only one class \('Banana'\) in split 'Training'"):
        train_classifier(bananas, settings())


def test_spark_ml_runs_the_native_blas_one_thread_per_call(spark):
    """`make setup` installs OpenBLAS (Debian); the project's hook keeps it to one thread."""
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get here: make setup leaves Spark ML its Java BLAS")
    jvm = spark._jvm
    assert jvm.java.lang.System.getenv("OPENBLAS_NUM_THREADS") == "1"
    implementation = jvm.dev.ludovic.netlib.blas.BLAS.getInstance().getClass().getSimpleName()
    assert implementation == "JNIBLAS"
