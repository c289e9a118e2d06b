"""Nodes of the classification pipeline: the classifier trained (or reused), then scored."""

from __future__ import annotations

import logging
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from fruits.ml import classifier
from fruits.ml.refit import reuses_previous
from fruits.params import ClassificationParams
from fruits.spark.delta import table_digest

logger = logging.getLogger(__name__)


def train_or_reuse_classifier(
    pca_features: DataFrame,
    explained_variance: dict[str, Any],
    params: ClassificationParams,
    previous_fruit_classifier: PipelineModel | None,
    previous_classifier_training: dict[str, Any] | None,
) -> tuple[PipelineModel, dict[str, Any]]:
    """Train the classifier, unless the last run's was trained in the same PCA space.

    With ``refit: on_change``, the same settings and the same PCA fit (the reduction's
    ``fit``: the space the features live in) reuse the previous model and its training
    record: the classifier follows the PCA's refit policy, so new images are scored by
    the current model until enough have arrived for the PCA to be refit, and a re-run
    leaves every output identical. ``always`` retrains.

    Returns:
        ``fruit_classifier`` and ``classifier_training`` (the chosen regularization,
        validation accuracies, the PCA fit it was trained in, its input and settings).
    """
    fit = explained_variance["fit"]
    previous = previous_classifier_training or {}
    if (
        reuses_previous(params.refit, previous_fruit_classifier, previous, params.settings)
        and previous.get("pca_fit") == fit
    ):
        logger.info("Classifier settings and PCA fit unchanged: the previous model is reused.")
        return previous_fruit_classifier, previous
    model, report = classifier.train_classifier(pca_features, params)
    return model, {
        **report,
        "settings": params.settings,
        "pca_fit": fit,
        "input_digest": table_digest(pca_features),
    }


def evaluate_classifier(
    pca_features: DataFrame,
    fruit_classifier: PipelineModel,
    classifier_training: dict[str, Any],
    params: ClassificationParams,
    previous_classification_metrics: dict[str, Any] | None,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class figures and confusion matrix on the test split.

    The same classifier (its training record) scored on the same table (its digest) gives
    the same figures: the last run's are kept then, nothing is scored again.
    """
    sources = {
        "pca_features": table_digest(pca_features),
        "classifier_training": classifier_training,
        "test_split": params.test_split,
    }
    previous = previous_classification_metrics or {}
    if previous.get("sources") == sources:
        logger.info("Classifier and test images unchanged: the last evaluation is kept.")
        return previous
    metrics = classifier.evaluate_classifier(
        pca_features, fruit_classifier, classifier_training, params.test_split
    )
    return {**metrics, "sources": sources}
