"""Nodes of the reporting pipeline: figures saved through matplotlib.MatplotlibDataset."""

from __future__ import annotations

import io
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

# Class names are written on the plots up to this many classes; beyond, they would overlap.
_MAX_NAMED_CLASSES = 40


def plot_pca_scatter(pca_features: DataFrame, max_points: int, seed: int) -> Figure:
    """The images on the first two principal components, coloured by label.

    A random sample of about ``max_points`` images is drawn in Spark; only that sample
    (two numbers and a label per image) reaches the driver.
    """
    total = pca_features.count()
    sample = (
        pca_features.sample(fraction=min(1.0, max_points / max(total, 1)), seed=seed)
        .select(
            "label", F.col("pca_features")[0].alias("pc1"), F.col("pca_features")[1].alias("pc2")
        )
        .limit(max_points)
        .toPandas()
    )
    labels = sorted(sample["label"].unique())
    colours = matplotlib.colormaps["tab20"]
    figure = Figure(figsize=(10, 8))
    axis = figure.subplots()
    for i, label in enumerate(labels):
        points = sample[sample["label"] == label]
        axis.scatter(points["pc1"], points["pc2"], s=8, color=colours(i % 20), alpha=0.7)
        if len(labels) <= _MAX_NAMED_CLASSES:
            axis.annotate(label, (points["pc1"].median(), points["pc2"].median()), fontsize=7)
    axis.set_xlabel("principal component 1")
    axis.set_ylabel("principal component 2")
    axis.set_title(
        f"{len(sample)} of {total} images on the first two components, {len(labels)} classes"
    )
    figure.tight_layout()
    return figure


def plot_sample_images(images: DataFrame, max_classes: int, per_class: int) -> Figure:
    """A grid with the first ``per_class`` images of each of the first ``max_classes`` labels."""
    first_images = Window.partitionBy("label").orderBy("path")
    chosen_labels = images.select("label").distinct().orderBy("label").limit(max_classes)
    samples = (
        images.join(chosen_labels, "label")
        .withColumn("rank", F.row_number().over(first_images))
        .where(F.col("rank") <= per_class)
        .select("label", "rank", "content")
        .orderBy("label", "rank")
        .collect()
    )
    labels = sorted({row["label"] for row in samples})
    columns = min(len(labels), 8)
    rows = -(-len(labels) // columns) if labels else 1
    figure = Figure(figsize=(2 * columns, 2.2 * rows))
    grid = figure.add_gridspec(rows, columns)
    for i, label in enumerate(labels):
        contents = [row["content"] for row in samples if row["label"] == label]
        tiles = [_thumbnail(content) for content in contents]
        axis = figure.add_subplot(grid[i // columns, i % columns])
        axis.imshow(np.concatenate(tiles, axis=1))
        axis.set_title(label, fontsize=8)
        axis.axis("off")
    figure.suptitle(f"Sample images: {per_class} per class, {len(labels)} classes")
    figure.tight_layout()
    return figure


def _thumbnail(content: bytes, size: int = 100) -> np.ndarray:
    with Image.open(io.BytesIO(content)) as image:
        return np.asarray(image.convert("RGB").resize((size, size)))


def plot_confusion_matrix(classification_metrics: dict[str, Any]) -> Figure:
    """Row-normalized confusion matrix of the test split (true label down, predicted across)."""
    labels = classification_metrics["labels"]
    confusion = np.asarray(classification_metrics["confusion_matrix"], dtype=float)
    support = confusion.sum(axis=1, keepdims=True)
    normalized = np.divide(confusion, support, out=np.zeros_like(confusion), where=support > 0)
    side = max(6, 0.12 * len(labels) + 3)
    figure = Figure(figsize=(side + 1.5, side))
    axis = figure.subplots()
    heatmap = axis.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(labels))
    font = 9 if len(labels) <= _MAX_NAMED_CLASSES else 5
    axis.set_xticks(ticks, labels, rotation=90, fontsize=font)
    axis.set_yticks(ticks, labels, fontsize=font)
    for true, predicted in zip(
        *np.nonzero((confusion > 0) & ~np.eye(len(labels), dtype=bool)), strict=True
    ):
        axis.add_patch(Rectangle((predicted - 0.5, true - 0.5), 1, 1, fill=False, color="red"))
    axis.set_xlabel("predicted label")
    axis.set_ylabel("true label")
    axis.set_title(
        f"Test accuracy {classification_metrics['accuracy']:.2%}, macro-F1 "
        f"{classification_metrics['macro_f1']:.3f} ({classification_metrics['n_test_images']} "
        "images; errors boxed in red)"
    )
    figure.colorbar(heatmap, ax=axis, fraction=0.04, label="share of the true class")
    figure.tight_layout()
    return figure
