"""The fruit classifier: multinomial logistic regression (Spark ML) on the PCA features.

Trained on one split with its regularization chosen on a held-out part, scored on
another split. Only aggregates (confusion counts, a bounded list of errors) reach
the driver.
"""

from __future__ import annotations

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
from fruits.ml.pca import PCA_VECTOR
from fruits.params import ClassificationParams

LABEL_INDEX = "label_index"
PREDICTED_LABEL = "predicted_label"
# Misclassified images listed in the metrics (for the results notebook), at most.
MAX_LISTED_ERRORS = 200


def to_pca_vectors(pca_features: DataFrame) -> DataFrame:
    """Add the ``pca_vector`` column (an ML vector) that ``fruit_classifier`` expects."""
    return pca_features.withColumn(PCA_VECTOR, array_to_vector(F.col("pca_features")))


def train_classifier(
    pca_features: DataFrame, settings: ClassificationParams
) -> tuple[PipelineModel, dict[str, Any]]:
    """Fit a multinomial logistic regression on one split, choosing its regularization.

    ``reg_params`` are compared on a held-out part of the split (``1 - train_ratio``,
    stratification aside); the best one is refit on the whole split.

    Returns:
        ``fruit_classifier`` (input ``pca_vector``; outputs ``probability``,
        ``prediction`` and ``predicted_label``) and the tuning report.
    """
    train_split, reg_params = settings.train_split, settings.reg_params
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
        if len(indexer.labels) < 2:  # noqa: PLR2004 - a classifier needs two classes
            raise FruitsInputError(
                f"Only one class ({indexer.labels[0]!r}) in split {train_split!r}: a "
                "classifier needs at least 2; add a folder of images of another class."
            )
        regression = LogisticRegression(
            featuresCol=PCA_VECTOR,
            labelCol=LABEL_INDEX,
            family="multinomial",
            elasticNetParam=settings.elastic_net_param,
            maxIter=settings.max_iter,
            tol=settings.tol,
        )
        tuning = TrainValidationSplit(
            estimator=regression,
            estimatorParamMaps=ParamGridBuilder().addGrid(regression.regParam, reg_params).build(),
            evaluator=MulticlassClassificationEvaluator(
                labelCol=LABEL_INDEX, metricName="accuracy"
            ),
            trainRatio=settings.train_ratio,
            seed=settings.seed,
            parallelism=settings.search_parallelism,
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


def evaluate_classifier(
    pca_features: DataFrame,
    fruit_classifier: PipelineModel,
    classifier_training: dict[str, Any],
    test_split: str,
) -> dict[str, Any]:
    """Score the classifier on one split: accuracy, macro-F1, per-class figures, confusion.

    Only the (true label, predicted label) counts leave Spark, each with the first
    ``MAX_LISTED_ERRORS`` paths of its errors: at most classes^2 rows, from one query.
    """
    test = to_pca_vectors(pca_features.where(F.col("split") == test_split))
    predictions = fruit_classifier.transform(test).select("path", "label", PREDICTED_LABEL)
    # The first errors by path overall are among each pair's first ones: the pairs' counts
    # and errors come from one pass (a second query read the table and predicted again).
    error_paths = F.collect_list(F.when(F.col("label") != F.col(PREDICTED_LABEL), F.col("path")))
    pair_counts = (
        predictions.groupBy("label", PREDICTED_LABEL)
        .agg(
            F.count("*").alias("count"),
            F.slice(F.array_sort(error_paths), 1, MAX_LISTED_ERRORS).alias("error_paths"),
        )
        .collect()
    )
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
    errors = sorted(
        (path, row["label"], row[PREDICTED_LABEL])
        for row in pair_counts
        for path in row["error_paths"]
    )[:MAX_LISTED_ERRORS]
    return {
        "test_split": test_split,
        "n_test_images": int(support.sum()),
        "accuracy": float(correct.sum() / support.sum()),
        "macro_f1": float(f1[tested].mean()),
        "classifier": classifier_training,
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
            {"path": path, "label": label, "predicted": predicted}
            for path, label, predicted in errors
        ],
    }
