"""Reporting: the plots of the pipeline run, and what each plotting node draws."""

import json

import pytest
from matplotlib.patches import Rectangle
from PIL import Image

from fruits import figures
from fruits.params import PcaScatterParams, SampleImagesParams
from fruits.pipelines.reporting.nodes import (
    plot_explained_variance,
    plot_pca_scatter,
    plot_sample_images,
)

PLOTS = ["scree_plot", "sample_images", "pca_scatter", "confusion_matrix"]


@pytest.mark.pipeline
@pytest.mark.parametrize("name", PLOTS)
def test_pipeline_run_wrote_every_plot(pipeline_run, name):
    with Image.open(pipeline_run.data_root / "08_reporting" / f"{name}.png") as plot:
        assert plot.format == "PNG" and plot.width >= 600 and plot.height >= 400


def test_the_scree_plot_is_drawn_again_only_when_what_it_shows_changes():
    ratios = [0.5, 0.3, 0.2]
    fitted = {
        "explained_variance_ratio": ratios, "cumulative_explained_variance": [0.5, 0.8, 1.0],
        "k": 2, "k_source": "variance_target", "variance_target": 0.8, "variance_at_k": 0.8,
        "n_images": 40, "n_features": 3, "fit": "a", "fitted_rows": 40, "changed_since_fit": 0,
        "input_digest": "1:aa",
    }  # fmt: skip
    # The fit reused on new images: its report counts them, the figure is the same.
    reused = {**fitted, "changed_since_fit": 4, "input_digest": "2:bb"}
    assert plot_explained_variance(reused).sources == plot_explained_variance(fitted).sources
    refit = {**fitted, "k": 3, "variance_at_k": 1.0}
    assert plot_explained_variance(refit).sources != plot_explained_variance(fitted).sources
    figure = plot_explained_variance(reused).draw()
    assert figure.axes[0].get_title() == "PCA of 40 images x 3 features"


@pytest.mark.pipeline
def test_pca_scatter_draws_a_bounded_sample(spark, pipeline_run):
    pca_features = spark.read.format("delta").load(
        str(pipeline_run.data_root / "05_model_input" / "pca_features")
    )
    # The run's own report: the scatter's total is its count of accepted files, which must be
    # the number of projected images.
    report = json.loads(
        (pipeline_run.data_root / "08_reporting" / "featurization_report.json").read_text()
    )
    assert report["accepted"] == pca_features.count()
    figure = plot_pca_scatter(pca_features, report, PcaScatterParams(max_points=50, seed=1)).draw()
    points = sum(len(c.get_offsets()) for c in figure.axes[0].collections)
    assert 0 < points <= 50
    assert figure.axes[0].get_title().startswith(f"{points} of {report['accepted']} images")
    everything = plot_pca_scatter(
        pca_features, report, PcaScatterParams(max_points=10_000, seed=1)
    ).draw()
    assert sum(len(c.get_offsets()) for c in everything.axes[0].collections) == report["accepted"]


@pytest.mark.pipeline
def test_sample_images_grid_has_one_panel_per_class(spark, pipeline_run):
    images = spark.read.format("delta").load(
        str(pipeline_run.data_root / "02_intermediate" / "images")
    )
    report = {"image_files": 12, "rejected": 1}
    plan = plot_sample_images(images, report, SampleImagesParams(max_classes=5, per_class=2))
    figure = plan.draw()
    assert figure.get_suptitle().endswith("(12 image files, 1 rejected)")
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
    figure = figures.confusion_matrix(metrics)
    boxes = [p for p in figure.axes[0].patches if isinstance(p, Rectangle)]
    assert [(b.get_x(), b.get_y()) for b in boxes] == [(1.5, 0.5)]  # true Lemon, predicted Lime
    assert "83.33%" in figure.axes[0].get_title()


def test_scree_plot_marks_k():
    report = {
        "k": 3,
        "k_source": "variance_target",
        "variance_target": 0.9,
        "variance_at_k": 0.95,
        "n_images": 10,
        "n_features": 5,
        "explained_variance_ratio": [0.6, 0.25, 0.1, 0.04, 0.01],
        "cumulative_explained_variance": [0.6, 0.85, 0.95, 0.99, 1.0],
    }
    figure = figures.scree_plot(report)
    texts = [text.get_text() for axis in figure.axes for text in axis.texts]
    assert "k = 3 (95.0%)" in texts
    assert any(line.get_xdata()[0] == 3 for line in figure.axes[1].lines)


def test_sample_grid_draws_an_undecodable_file_as_a_grey_tile():
    from tests.conftest import FRUITS_360  # noqa: PLC0415

    kiwi = sorted((FRUITS_360 / "Training" / "Kiwi").iterdir())[0].read_bytes()
    figure = figures.sample_grid([("Kiwi", kiwi), ("Kiwi", kiwi[:200]), ("Lemon", b"")], 2)
    assert [axis.get_title() for axis in figure.axes] == ["Kiwi", "Lemon"]
    kiwi_panel = figure.axes[0].get_images()[0].get_array()
    assert kiwi_panel.shape[:2] == (100, 200)
    assert (kiwi_panel[:, 100:] == 200).all() and not (kiwi_panel[:, :100] == 200).all()


def test_a_figure_is_drawn_again_only_when_its_sources_change(tmp_path):
    """A re-run with the same inputs keeps the saved PNG: no drawing, no query behind it."""
    from fruits.datasets import FigureDataset  # noqa: PLC0415
    from fruits.figures import FigurePlan  # noqa: PLC0415

    scree = {
        "k": 2, "k_source": "variance_target", "variance_target": 0.9, "variance_at_k": 0.95,
        "n_images": 10, "n_features": 3, "explained_variance_ratio": [0.7, 0.25, 0.05],
        "cumulative_explained_variance": [0.7, 0.95, 1.0],
    }  # fmt: skip
    drawn = []

    def plan(sources):
        def draw():
            drawn.append(sources)
            return figures.scree_plot(scree)

        return FigurePlan(sources, draw)

    path = tmp_path / "08_reporting" / "scree_plot.png"
    dataset = FigureDataset(filepath=str(path), save_args={"dpi": 50})
    assert dataset.saved_sources() is None
    dataset.save(plan("run 1"))
    first = path.read_bytes()
    assert drawn == ["run 1"] and dataset.saved_sources() == "run 1"
    # A new dataset object, as in the next run's catalog.
    FigureDataset(filepath=str(path), save_args={"dpi": 50}).save(plan("run 1"))
    assert drawn == ["run 1"] and path.read_bytes() == first
    FigureDataset(filepath=str(path), save_args={"dpi": 50}).save(plan("run 2"))
    assert drawn == ["run 1", "run 2"] and dataset.saved_sources() == "run 2"
    with Image.open(path) as png:
        assert png.format == "PNG" and png.text["fruits-sources"] == "run 2"
    assert dataset.preview()  # kedro-viz's preview, inherited
    # A figure given as it is is saved as MatplotlibDataset saves it: no record of sources.
    dataset.save(figures.scree_plot(scree))
    assert dataset.saved_sources() is None


def test_figure_sources_follow_the_inputs():
    from fruits.figures import sources_of  # noqa: PLC0415

    report = {"k": 3, "variance_at_k": 0.95}
    assert sources_of("scree_plot", report) == sources_of("scree_plot", dict(report))
    assert sources_of("scree_plot", report) != sources_of("scree_plot", {**report, "k": 4})
    assert sources_of("scree_plot", report) != sources_of("confusion_matrix", report)
