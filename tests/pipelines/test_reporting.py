"""Reporting: the plots of the pipeline run, and what each plotting node draws."""

import pytest
from matplotlib.patches import Rectangle
from PIL import Image

from fruits.pipelines.reporting.nodes import (
    plot_confusion_matrix,
    plot_pca_scatter,
    plot_sample_images,
)

PLOTS = ["scree_plot", "sample_images", "pca_scatter", "confusion_matrix"]


@pytest.mark.parametrize("name", PLOTS)
def test_pipeline_run_wrote_every_plot(pipeline_run, name):
    with Image.open(pipeline_run.data_root / "08_reporting" / f"{name}.png") as plot:
        assert plot.format == "PNG" and plot.width >= 600 and plot.height >= 400


def test_pca_scatter_draws_a_bounded_sample(spark, pipeline_run):
    pca_features = spark.read.parquet(
        str(pipeline_run.data_root / "05_model_input" / "pca_features.parquet")
    )
    figure = plot_pca_scatter(pca_features, max_points=50, seed=1)
    points = sum(len(c.get_offsets()) for c in figure.axes[0].collections)
    assert 0 < points <= 50
    everything = plot_pca_scatter(pca_features, max_points=10_000, seed=1)
    assert sum(len(c.get_offsets()) for c in everything.axes[0].collections) == pca_features.count()


def test_sample_images_grid_has_one_panel_per_class(spark, pipeline_run):
    images = spark.read.parquet(str(pipeline_run.data_root / "02_intermediate" / "images.parquet"))
    figure = plot_sample_images(images, max_classes=5, per_class=2)
    titles = [axis.get_title() for axis in figure.axes]
    assert titles == sorted(r.label for r in images.select("label").distinct().collect())[:5]
    # two 100-pixel tiles side by side per panel
    assert figure.axes[0].get_images()[0].get_array().shape[:2] == (100, 200)


def test_confusion_matrix_boxes_the_errors():
    metrics = {
        "labels": ["Kiwi", "Lemon", "Lime"],
        "confusion_matrix": [[2, 0, 0], [0, 1, 1], [0, 0, 2]],
        "accuracy": 5 / 6, "macro_f1": 0.82, "n_test_images": 6,
    }  # fmt: skip
    figure = plot_confusion_matrix(metrics)
    boxes = [p for p in figure.axes[0].patches if isinstance(p, Rectangle)]
    assert [(b.get_x(), b.get_y()) for b in boxes] == [(1.5, 0.5)]  # true Lemon, predicted Lime
    assert "83.33%" in figure.axes[0].get_title()
