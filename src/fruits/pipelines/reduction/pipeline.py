"""Reduction pipeline: ``image_features`` -> ``pca_model``, ``pca_features``, reports."""

from kedro.pipeline import Node, Pipeline

from fruits.pipelines.reduction.nodes import (
    fit_or_reuse_pca,
    plot_explained_variance,
    project_features,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Fit the PCA, project every image, and report the explained variance."""
    return Pipeline(
        [
            Node(
                func=fit_or_reuse_pca,
                inputs=[
                    "image_features",
                    "params:reduction.standardize",
                    "params:reduction.variance_target",
                    "params:reduction.k",
                    "params:reduction.refit",
                    "previous_pca_model",
                    "previous_explained_variance",
                ],
                outputs=["pca_model", "explained_variance"],
                name="fit_pca",
            ),
            Node(
                func=project_features,
                inputs=["image_features", "pca_model"],
                outputs="pca_features",
                name="project_features",
            ),
            Node(
                func=plot_explained_variance,
                inputs="explained_variance",
                outputs="scree_plot",
                name="plot_explained_variance",
            ),
        ]
    )
