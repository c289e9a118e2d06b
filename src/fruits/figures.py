"""The project's figures, drawn from small inputs (reports, samples) with matplotlib.

Spark never runs here: the reporting nodes select what a figure shows and pass it in.
"""

from __future__ import annotations

import hashlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fruits.vision.images import UnreadableImageError, thumbnail

# Class names are written on the plots up to this many classes; beyond, they would overlap.
_MAX_NAMED_CLASSES = 40
# What draws the figures: a new version of this module or of matplotlib draws every one again.
# Read through the package's loader: on a cluster the project may run from a zip or a wheel.
_DRAWING = hashlib.sha256(
    (pkgutil.get_data(__package__ or "fruits", "figures.py") or b"")
    + matplotlib.__version__.encode()
).hexdigest()


@dataclass(frozen=True)
class FigurePlan:
    """A figure not drawn yet, and the identity of what it would be drawn from.

    ``fruits.datasets.FigureDataset`` draws it only when the saved figure was drawn from
    other sources: a re-run with nothing new redraws nothing (and runs none of the Spark
    queries behind ``draw``).
    """

    sources: str
    draw: Callable[[], Figure]


def sources_of(*inputs: Any) -> str:
    """A digest of a figure's inputs (JSON-able: reports, parameters, table digests) and of
    the code that draws it."""
    text = json.dumps([_DRAWING, *inputs], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# What the scree plot shows of the PCA's report (a reused fit's report changes elsewhere).
SCREE_PLOT_FIELDS = (
    "explained_variance_ratio",
    "cumulative_explained_variance",
    "k",
    "k_source",
    "variance_target",
    "variance_at_k",
    "n_images",
    "n_features",
)


def _laid_out(figure: Figure) -> Figure:
    """The figure with tight margins, laid out once.

    ``tight_layout`` leaves a placeholder layout engine behind, which makes ``savefig``
    lay every text out once more before drawing: 0.3 s of a 95-class confusion matrix.
    """
    figure.tight_layout()
    figure.set_layout_engine(None)
    return figure


def scree_plot(explained_variance: dict[str, Any]) -> Figure:
    """Scree plot: per-component and cumulative explained variance, with k marked."""
    ratios = np.asarray(explained_variance["explained_variance_ratio"])
    cumulative = np.asarray(explained_variance["cumulative_explained_variance"])
    k = explained_variance["k"]
    shown = min(len(ratios), max(2 * k, 50))
    components = np.arange(1, shown + 1)

    figure = Figure(figsize=(9, 5))
    per_component_axis = figure.subplots()
    per_component_axis.bar(components, ratios[:shown], color="tab:blue", alpha=0.6)
    per_component_axis.set_xlabel("principal component")
    per_component_axis.set_ylabel("explained variance ratio", color="tab:blue")
    cumulative_axis = per_component_axis.twinx()
    cumulative_axis.plot(components, cumulative[:shown], color="tab:red")
    cumulative_axis.set_ylim(0, 1.02)
    cumulative_axis.set_ylabel("cumulative explained variance", color="tab:red")
    cumulative_axis.axvline(k, color="black", linestyle="--")
    if explained_variance["k_source"] == "variance_target":
        cumulative_axis.axhline(
            explained_variance["variance_target"], color="grey", linestyle=":", label="target"
        )
    cumulative_axis.annotate(
        f"k = {k} ({explained_variance['variance_at_k']:.1%})",
        xy=(k, explained_variance["variance_at_k"]),
        xytext=(8, -16),
        textcoords="offset points",
    )
    n_images, n_features = explained_variance["n_images"], explained_variance["n_features"]
    per_component_axis.set_title(f"PCA of {n_images} images x {n_features} features")
    return _laid_out(figure)


def pca_scatter(sample: pd.DataFrame, total: int) -> Figure:
    """Images on the first two principal components, coloured by label.

    Args:
        sample: ``label``, ``pc1`` and ``pc2`` of the images drawn.
        total: How many images there are in all (for the title).
    """
    labels = sorted(sample["label"].unique())
    # One collection, drawn label after label as one per label would be: 95 collections
    # cost a second more to draw.
    points = sample.sort_values("label", kind="stable")
    colour_of = {label: i % 20 for i, label in enumerate(labels)}
    colours = matplotlib.colormaps["tab20"](points["label"].map(colour_of).to_numpy())
    figure = Figure(figsize=(10, 8))
    axis = figure.subplots()
    axis.scatter(points["pc1"], points["pc2"], s=8, color=colours, alpha=0.7)
    if len(labels) <= _MAX_NAMED_CLASSES:
        for label, of_label in points.groupby("label"):
            axis.annotate(label, (of_label["pc1"].median(), of_label["pc2"].median()), fontsize=7)
    axis.set_xlabel("principal component 1")
    axis.set_ylabel("principal component 2")
    axis.set_title(
        f"{len(sample)} of {total} images on the first two components, {len(labels)} classes"
    )
    return _laid_out(figure)


def sample_grid(samples: list[tuple[str, bytes]], per_class: int, counts: str = "") -> Figure:
    """A grid with one panel per label showing its images side by side.

    Args:
        samples: ``(label, encoded image)`` pairs, in display order.
        per_class: Images per label (for the title).
        counts: What the images are drawn from (for the title), e.g. file counts.

    An image that does not decode is drawn as a grey tile: the grid never fails on a
    file the featurization rejects.
    """
    labels = sorted({label for label, _ in samples})
    columns = min(len(labels), 8)
    rows = -(-len(labels) // columns) if labels else 1
    figure = Figure(figsize=(2 * columns, 2.2 * rows))
    grid = figure.add_gridspec(rows, columns)
    for i, label in enumerate(labels):
        tiles = [_tile(content) for sample_label, content in samples if sample_label == label]
        axis = figure.add_subplot(grid[i // columns, i % columns])
        axis.imshow(np.concatenate(tiles, axis=1))
        axis.set_title(label, fontsize=8)
        axis.axis("off")
    title = f"Sample images: {per_class} per class, {len(labels)} classes"
    figure.suptitle(f"{title} ({counts})" if counts else title)
    return _laid_out(figure)


def _tile(content: bytes, size: int = 100) -> np.ndarray:
    try:
        return thumbnail(content, size)
    except UnreadableImageError:
        return np.full((size, size, 3), 200, dtype=np.uint8)


def confusion_matrix(classification_metrics: dict[str, Any]) -> Figure:
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
    return _laid_out(figure)
