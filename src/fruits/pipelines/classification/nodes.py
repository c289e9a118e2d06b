"""Nodes of the classification pipeline: the classifier trained (or reused), then scored."""

from __future__ import annotations

import logging
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from fruits.ml import classifier
from fruits.ml.refit import frame_digest, reuses_previous
from fruits.params import ClassificationParams

logger = logging.getLogger(__name__)


def train_or_reuse_classifier(
    pca_features: DataFrame,
    params: ClassificationParams,
    previous_fruit_classifier: PipelineModel | None,
    previous_classifier_training: dict[str, Any] | None,
) -> tuple[PipelineModel, dict[str, Any]]:
    """Train the classifier, unless the last run's had the same input and settings.

    With ``refit: on_change``, unchanged ``pca_features`` (digest of path, label, split
    and values) and settings reuse the previous model and its training record: a re-run
    leaves every output identical (Spark's optimizer sums partial gradients in
    task-completion order, so a refit differs in the last bits). ``always`` retrains.

    Returns:
        ``fruit_classifier`` and ``classifier_training`` (the chosen regularization,
        validation accuracies, input digest and settings).
    """
    digest = frame_digest(pca_features, ["path", "label", "split", "pca_features"])
    previous = previous_classifier_training
    if reuses_previous(params.refit, previous_fruit_classifier, previous, digest, params.settings):
        logger.info("Classifier input and settings unchanged: the previous model is reused.")
        return previous_fruit_classifier, previous_classifier_training
    model, report = classifier.train_classifier(pca_features, params)
    return model, {**report, "settings": params.settings, "input_digest": digest}


def evaluate_classifier(
    pca_features: DataFrame,
    fruit_classifier: PipelineModel,
    classifier_training: dict[str, Any],
    params: ClassificationParams,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class figures and confusion matrix on the test split."""
    return classifier.evaluate_classifier(
        pca_features, fruit_classifier, classifier_training, params.test_split
    )
