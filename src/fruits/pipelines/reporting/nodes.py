"""Nodes of the reporting pipeline: a bounded selection made in Spark, then a figure drawn.

Each node returns a ``FigurePlan``: the figure is drawn (its selection queried) only if the
saved one was drawn from other inputs (``fruits.datasets.FigureDataset``).
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from pyspark.sql import DataFrame

from fruits import figures
from fruits.figures import FigurePlan, sources_of
from fruits.params import PcaScatterParams, SampleImagesParams
from fruits.spark.delta import table_digest
from fruits.spark.sampling import first_images_per_label, first_two_components


def plot_sample_images(
    images: DataFrame, featurization_report: dict[str, Any], params: SampleImagesParams
) -> FigurePlan:
    """The first ``per_class`` images of each of the first ``max_classes`` labels, with the
    run's file and rejection counts (drawn once featurization is done: never beside the CNN)."""
    counts = (
        f"{featurization_report['image_files']} image files, "
        f"{featurization_report['rejected']} rejected"
    )

    def draw() -> Figure:
        samples = first_images_per_label(images, params.max_classes, params.per_class)
        return figures.sample_grid(samples, params.per_class, counts)

    sources = sources_of("sample_images", table_digest(images), counts, params.model_dump())
    return FigurePlan(sources, draw)


def plot_pca_scatter(
    pca_features: DataFrame, featurization_report: dict[str, Any], params: PcaScatterParams
) -> FigurePlan:
    """About ``max_points`` images drawn at random, on the first two principal components.

    The images projected are the run's accepted files: their count is the report's (a count
    of the table would be one more query).
    """
    total = featurization_report["accepted"]

    def draw() -> Figure:
        sample = first_two_components(pca_features, total, params.max_points, params.seed)
        return figures.pca_scatter(sample, total)

    sources = sources_of("pca_scatter", table_digest(pca_features), total, params.model_dump())
    return FigurePlan(sources, draw)


def plot_explained_variance(explained_variance: dict[str, Any]) -> FigurePlan:
    """Scree plot: per-component and cumulative explained variance, with k marked (drawn
    again only when those change: not when a reused fit's report counts new images)."""
    shown = {field: explained_variance[field] for field in figures.SCREE_PLOT_FIELDS}
    return FigurePlan(
        sources_of("scree_plot", shown),
        # Drawn from what the sources name only: a field it used and they missed would fail.
        lambda: figures.scree_plot(shown),
    )


def plot_confusion_matrix(classification_metrics: dict[str, Any]) -> FigurePlan:
    """Row-normalized confusion matrix of the test split, errors boxed."""
    return FigurePlan(
        sources_of("confusion_matrix", classification_metrics),
        lambda: figures.confusion_matrix(classification_metrics),
    )
