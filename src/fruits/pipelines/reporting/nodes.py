"""Nodes of the reporting pipeline: what each figure shows is selected in Spark, then drawn.

Only small selections reach the driver: a bounded sample of points, a few images per class.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from fruits import figures
from fruits.params import PcaScatterParams, SampleImagesParams


def plot_sample_images(images: DataFrame, params: SampleImagesParams) -> Figure:
    """The first ``per_class`` images of each of the first ``max_classes`` labels."""
    first_images = Window.partitionBy("label").orderBy("path")
    chosen_labels = images.select("label").distinct().orderBy("label").limit(params.max_classes)
    samples = (
        images.join(chosen_labels, "label")
        .withColumn("rank", F.row_number().over(first_images))
        .where(F.col("rank") <= params.per_class)
        .select("label", "rank", "content")
        .orderBy("label", "rank")
        .collect()
    )
    pairs = [(row["label"], row["content"]) for row in samples]
    return figures.sample_grid(pairs, params.per_class)


def plot_pca_scatter(pca_features: DataFrame, params: PcaScatterParams) -> Figure:
    """About ``max_points`` images drawn at random, on the first two principal components."""
    total = pca_features.count()
    sample = (
        pca_features.sample(fraction=min(1.0, params.max_points / max(total, 1)), seed=params.seed)
        .select(
            "label", F.col("pca_features")[0].alias("pc1"), F.col("pca_features")[1].alias("pc2")
        )
        .limit(params.max_points)
        .toPandas()
    )
    return figures.pca_scatter(sample, total)


def plot_explained_variance(explained_variance: dict[str, Any]) -> Figure:
    """Scree plot: per-component and cumulative explained variance, with k marked."""
    return figures.scree_plot(explained_variance)


def plot_confusion_matrix(classification_metrics: dict[str, Any]) -> Figure:
    """Row-normalized confusion matrix of the test split, errors boxed."""
    return figures.confusion_matrix(classification_metrics)
