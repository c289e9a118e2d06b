"""Reporting pipeline: sample images, PCA scatter and confusion matrix plots."""

from kedro.pipeline import Node, Pipeline

from fruits.pipelines.reporting.nodes import (
    plot_confusion_matrix,
    plot_pca_scatter,
    plot_sample_images,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Figures of the inputs and results, saved as PNG files kedro-viz can preview."""
    return Pipeline(
        [
            Node(
                func=plot_sample_images,
                inputs=[
                    "images",
                    "params:reporting.sample_images.max_classes",
                    "params:reporting.sample_images.per_class",
                ],
                outputs="sample_images_plot",
                name="plot_sample_images",
            ),
            Node(
                func=plot_pca_scatter,
                inputs=[
                    "pca_features",
                    "params:reporting.pca_scatter.max_points",
                    "params:reporting.pca_scatter.seed",
                ],
                outputs="pca_scatter_plot",
                name="plot_pca_scatter",
            ),
            Node(
                func=plot_confusion_matrix,
                inputs="classification_metrics",
                outputs="confusion_matrix_plot",
                name="plot_confusion_matrix",
            ),
        ]
    )
