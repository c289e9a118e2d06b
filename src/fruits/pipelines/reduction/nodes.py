"""Nodes of the reduction pipeline: the PCA fitted (or reused) and every image projected."""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from fruits.ml import pca
from fruits.ml.refit import reuses_previous
from fruits.params import ReductionParams
from fruits.spark.delta import TableChanges, table_digest

logger = logging.getLogger(__name__)


def fit_or_reuse_pca(
    image_features: DataFrame,
    params: ReductionParams,
    previous_pca_model: PipelineModel | None,
    previous_explained_variance: dict[str, Any] | None,
    previous_pca_features: DataFrame | None,
) -> tuple[PipelineModel, dict[str, Any], dict[str, Any]]:
    """Fit the PCA, unless the last run's still fits the images as ``refit`` says.

    ``on_change`` keeps the previous model (and its report) when the settings are the same
    and the images changed since its fit (rows added, replaced or removed, counted run
    after run) are at most ``refit_change_share`` of those it was fitted on: new images are
    then projected on it, and the table of features is not rewritten. Unchanged features
    are seen from the table's version alone, without reading it. ``always`` refits.

    Returns:
        ``pca_model`` (input ``feature_vector``, output ``pca_vector``), the
        ``explained_variance`` report (the fit's figures, ``fit``: its identity, in every
        projected row, ``fitted_rows``, ``changed_since_fit``, ``input_digest``, settings)
        and the ``projection_changes`` counted to decide (``pca.ProjectionChanges`` as a
        mapping; empty when none were: Kedro passes no None between nodes).
    """
    digest = table_digest(image_features)
    previous = previous_explained_variance or {}
    changes = None
    if reuses_previous(params.refit, previous_pca_model, previous, params.settings):
        if previous.get("input_digest") == digest:
            logger.info("PCA input and settings unchanged: the previous model is reused.")
            return previous_pca_model, previous, {}
        if previous_pca_features is not None:
            changes = pca.compare_with_projection(
                image_features, previous_pca_features, previous["fit"]
            )
        changed = previous.get("changed_since_fit", 0) + (
            changes.rows_changed if changes is not None else previous.get("fitted_rows", 0)
        )
        if changed <= params.refit_change_share * previous.get("fitted_rows", 0):
            logger.info(
                "PCA reused: %d image rows changed since its fit on %d (refit above %.0f%%).",
                changed, previous["fitted_rows"], 100 * params.refit_change_share,
            )  # fmt: skip
            report = {**previous, "changed_since_fit": changed, "input_digest": digest}
            return previous_pca_model, report, _as_mapping(changes)
    pca_model, explained_variance = pca.fit_pca(
        image_features, params.standardize, params.variance_target, params.k
    )
    report = {
        **explained_variance,
        "fit": uuid.uuid4().hex,
        "fitted_rows": explained_variance["n_images"],
        "changed_since_fit": 0,
        "settings": params.settings,
        "input_digest": digest,
    }
    return pca_model, report, _as_mapping(changes)


def _as_mapping(changes: pca.ProjectionChanges | None) -> dict[str, Any]:
    return asdict(changes) if changes is not None else {}


def project_features(
    image_features: DataFrame,
    pca_model: PipelineModel,
    explained_variance: dict[str, Any],
    previous_pca_features: DataFrame | None,
    projection_changes: dict[str, Any],
) -> TableChanges:
    """The changes of ``pca_features``: every image on the first k components, or only the
    new ones when the PCA fit is the one the table was projected with."""
    return pca.project_features(
        image_features,
        pca_model,
        explained_variance["fit"],
        previous_pca_features,
        pca.ProjectionChanges(**projection_changes) if projection_changes else None,
    )
