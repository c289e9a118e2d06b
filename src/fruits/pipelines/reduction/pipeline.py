"""Reduction pipeline: ``image_features`` -> ``pca_model``, ``explained_variance``, features."""

from kedro.pipeline import Node, Pipeline

from fruits.pipelines.reduction.nodes import fit_or_reuse_pca, project_features


def create_pipeline(**kwargs) -> Pipeline:
    """Fit the PCA (or keep last run's when nothing changed), then project every image."""
    return Pipeline(
        [
            Node(
                func=fit_or_reuse_pca,
                inputs=[
                    "image_features",
                    "params:reduction",
                    "previous_pca_model",
                    "previous_explained_variance",
                    "previous_pca_features",
                ],
                outputs=["pca_model", "explained_variance", "projection_changes"],
                name="fit_pca",
            ),
            Node(
                func=project_features,
                inputs=[
                    "image_features",
                    "pca_model",
                    "explained_variance",
                    "previous_pca_features",
                    "projection_changes",
                ],
                outputs="pca_features",
                name="project_features",
            ),
        ]
    )
