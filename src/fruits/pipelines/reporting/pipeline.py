"""Reporting pipeline: sample images, scree plot, PCA scatter and confusion matrix."""

from kedro.pipeline import Node, Pipeline

from fruits.pipelines.reporting.nodes import (
    plot_confusion_matrix,
    plot_explained_variance,
    plot_pca_scatter,
    plot_sample_images,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Figures of the inputs and results, saved as PNG files kedro-viz can preview."""
    return Pipeline(
        [
            Node(
                func=plot_sample_images,
                # After featurization's report: its counts are in the title, and the grid
                # does not take the cores from the CNN.
                inputs=["images", "featurization_report", "params:reporting.sample_images"],
                outputs="sample_images_plot",
                name="plot_sample_images",
            ),
            Node(
                func=plot_explained_variance,
                inputs="explained_variance",
                outputs="scree_plot",
                name="plot_explained_variance",
            ),
            Node(
                func=plot_pca_scatter,
                inputs=["pca_features", "featurization_report", "params:reporting.pca_scatter"],
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
