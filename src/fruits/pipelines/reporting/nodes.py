"""Nodes of the reporting pipeline: a bounded selection made in Spark, then a figure drawn."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from pyspark.sql import DataFrame

from fruits import figures
from fruits.params import PcaScatterParams, SampleImagesParams
from fruits.spark.sampling import first_images_per_label, first_two_components


def plot_sample_images(
    images: DataFrame, featurization_report: dict[str, Any], params: SampleImagesParams
) -> Figure:
    """The first ``per_class`` images of each of the first ``max_classes`` labels, with the
    run's file and rejection counts (drawn once featurization is done: never beside the CNN)."""
    samples = first_images_per_label(images, params.max_classes, params.per_class)
    counts = (
        f"{featurization_report['image_files']} image files, "
        f"{featurization_report['rejected']} rejected"
    )
    return figures.sample_grid(samples, params.per_class, counts)


def plot_pca_scatter(pca_features: DataFrame, params: PcaScatterParams) -> Figure:
    """About ``max_points`` images drawn at random, on the first two principal components."""
    sample, total = first_two_components(pca_features, params.max_points, params.seed)
    return figures.pca_scatter(sample, total)


def plot_explained_variance(explained_variance: dict[str, Any]) -> Figure:
    """Scree plot: per-component and cumulative explained variance, with k marked."""
    return figures.scree_plot(explained_variance)


def plot_confusion_matrix(classification_metrics: dict[str, Any]) -> Figure:
    """Row-normalized confusion matrix of the test split, errors boxed."""
    return figures.confusion_matrix(classification_metrics)
