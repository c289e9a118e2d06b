"""Nodes of the reduction pipeline: the PCA fitted (or reused) and every image projected."""

from __future__ import annotations

import logging
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from fruits.ml import pca
from fruits.ml.refit import reuses_previous
from fruits.params import ReductionParams

logger = logging.getLogger(__name__)


def fit_or_reuse_pca(
    image_features: DataFrame,
    params: ReductionParams,
    previous_pca_model: PipelineModel | None,
    previous_explained_variance: dict[str, Any] | None,
) -> tuple[PipelineModel, dict[str, Any]]:
    """Fit the PCA, unless the last run's was fitted on the same input and settings.

    With ``refit: on_change`` an unchanged input (same digest of paths and features)
    and unchanged settings reuse the previous model and report, so a re-run leaves
    every output identical: a refit would differ in the last bits, because Spark adds
    the distributed partial sums in the order the tasks finish. ``always`` refits.

    Returns:
        ``pca_model`` (input ``feature_vector``, output ``pca_vector``) and the
        ``explained_variance`` report, which records the input digest and settings.
    """
    digest = pca.pca_input_digest(image_features)
    previous = previous_explained_variance
    if reuses_previous(params.refit, previous_pca_model, previous, digest, params.settings):
        logger.info("PCA input and settings unchanged: the previous model is reused.")
        return previous_pca_model, previous_explained_variance
    pca_model, explained_variance = pca.fit_pca(
        image_features, params.standardize, params.variance_target, params.k
    )
    return pca_model, {**explained_variance, "settings": params.settings, "input_digest": digest}


def project_features(image_features: DataFrame, pca_model: PipelineModel) -> DataFrame:
    """``path``, ``label``, ``split`` and ``pca_features`` (k floats) of every image."""
    return pca.project_features(image_features, pca_model)
