"""Nodes of the classification pipeline."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.feature import IndexToString, StringIndexer
from pyspark.ml.functions import array_to_vector
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits.errors import FruitsInputError
from fruits.pipelines.reduction.nodes import PCA_VECTOR
from fruits.refit import check_refit_policy, frame_digest, reuses_previous

logger = logging.getLogger(__name__)

LABEL_INDEX = "label_index"
PREDICTED_LABEL = "predicted_label"
# Misclassified images listed in the metrics (for the results notebook), at most.
MAX_LISTED_ERRORS = 200


def to_pca_vectors(pca_features: DataFrame) -> DataFrame:
    """Add the ``pca_vector`` column (an ML vector) that ``fruit_classifier`` expects."""
    return pca_features.withColumn(PCA_VECTOR, array_to_vector(F.col("pca_features")))


def train_classifier(
    pca_features: DataFrame,
    train_split: str,
    reg_params: list[float],
    elastic_net_param: float,
    max_iter: int,
    train_ratio: float,
    seed: int,
) -> tuple[PipelineModel, dict[str, Any]]:
    """Fit a multinomial logistic regression on one split, choosing its regularization.

    ``reg_params`` are compared on a held-out part of the split (``1 - train_ratio``,
    stratification aside); the best one is refit on the whole split.

    Returns:
        ``fruit_classifier`` (input ``pca_vector``; outputs ``probability``,
        ``prediction`` and ``predicted_label``) and the tuning report.
    """
    training = to_pca_vectors(pca_features.where(F.col("split") == train_split)).persist()
    try:
        if training.isEmpty():
            raise FruitsInputError(
                f"No image in split {train_split!r} to train the classifier: put class folders "
                f"under a {train_split}/ folder or set classification.train_split."
            )
        indexer = StringIndexer(
            inputCol="label", outputCol=LABEL_INDEX, stringOrderType="alphabetAsc"
        ).fit(training)
        regression = LogisticRegression(
            featuresCol=PCA_VECTOR,
            labelCol=LABEL_INDEX,
            family="multinomial",
            elasticNetParam=elastic_net_param,
            maxIter=max_iter,
        )
        tuning = TrainValidationSplit(
            estimator=regression,
            estimatorParamMaps=ParamGridBuilder().addGrid(regression.regParam, reg_params).build(),
            evaluator=MulticlassClassificationEvaluator(
                labelCol=LABEL_INDEX, metricName="accuracy"
            ),
            trainRatio=train_ratio,
            seed=seed,
        ).fit(indexer.transform(training))
    finally:
        training.unpersist()
    best = tuning.bestModel
    labels = IndexToString(inputCol="prediction", outputCol=PREDICTED_LABEL, labels=indexer.labels)
    report = {
        "train_split": train_split,
        "reg_param": best.getRegParam(),
        "validation_accuracy": dict(
            zip(map(str, reg_params), map(float, tuning.validationMetrics), strict=True)
        ),
        "n_classes": len(indexer.labels),
    }
    return PipelineModel(stages=[best, labels]), report


def train_or_reuse_classifier(
    pca_features: DataFrame,
    train_split: str,
    reg_params: list[float],
    elastic_net_param: float,
    max_iter: int,
    train_ratio: float,
    seed: int,
    refit: str,
    previous_fruit_classifier: PipelineModel | None,
    previous_classification_metrics: dict[str, Any] | None,
) -> tuple[PipelineModel, dict[str, Any]]:
    """``train_classifier``, unless the last run's classifier had the same input and settings.

    With ``refit: on_change``, unchanged ``pca_features`` (digest of path, label, split and
    values) and settings reuse the previous model: a re-run leaves every output
    identical (Spark's optimizer sums partial gradients in task-completion order, so a
    refit differs in the last bits). ``always`` refits.
    """
    check_refit_policy("classification.refit", refit)
    settings = {
        "train_split": train_split, "reg_params": list(reg_params),
        "elastic_net_param": elastic_net_param, "max_iter": max_iter,
        "train_ratio": train_ratio, "seed": seed,
    }  # fmt: skip
    digest = frame_digest(pca_features, ["path", "label", "split", "pca_features"])
    previous = (previous_classification_metrics or {}).get("classifier")
    if reuses_previous(refit, previous_fruit_classifier, previous, digest, settings):
        logger.info("Classifier input and settings unchanged: the previous model is reused.")
        return previous_fruit_classifier, previous
    model, report = train_classifier(
        pca_features, train_split, reg_params, elastic_net_param, max_iter, train_ratio, seed
    )
    return model, {**report, "settings": settings, "input_digest": digest}


def evaluate_classifier(
    pca_features: DataFrame,
    fruit_classifier: PipelineModel,
    classifier_tuning: dict[str, Any],
    test_split: str,
) -> dict[str, Any]:
    """Score the classifier on one split: accuracy, macro-F1, per-class figures, confusion.

    Only the (true label, predicted label) counts leave Spark: at most classes^2 rows.
    """
    test = to_pca_vectors(pca_features.where(F.col("split") == test_split))
    predictions = fruit_classifier.transform(test).select("path", "label", PREDICTED_LABEL)
    pair_counts = predictions.groupBy("label", PREDICTED_LABEL).count().collect()
    if not pair_counts:
        raise FruitsInputError(
            f"No image in split {test_split!r} to evaluate the classifier: put class folders "
            f"under a {test_split}/ folder or set classification.test_split."
        )
    labels = sorted(
        {row["label"] for row in pair_counts} | set(fruit_classifier.stages[-1].getLabels())
    )
    position = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for row in pair_counts:
        confusion[position[row["label"]], position[row[PREDICTED_LABEL]]] += row["count"]

    correct = np.diag(confusion)
    support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    precision = np.divide(correct, predicted, out=np.zeros(len(labels)), where=predicted > 0)
    recall = np.divide(correct, support, out=np.zeros(len(labels)), where=support > 0)
    f1 = np.divide(
        2 * precision * recall, precision + recall,
        out=np.zeros(len(labels)), where=precision + recall > 0,
    )  # fmt: skip
    tested = support > 0
    errors = (
        predictions.where(F.col("label") != F.col(PREDICTED_LABEL))
        .orderBy("path")
        .limit(MAX_LISTED_ERRORS)
        .collect()
    )
    return {
        "test_split": test_split,
        "n_test_images": int(support.sum()),
        "accuracy": float(correct.sum() / support.sum()),
        "macro_f1": float(f1[tested].mean()),
        "classifier": classifier_tuning,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": labels,
        "confusion_matrix": confusion.tolist(),
        "errors": [
            {"path": row["path"], "label": row["label"], "predicted": row[PREDICTED_LABEL]}
            for row in errors
        ],
    }
