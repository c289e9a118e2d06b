"""Classification pipeline: ``pca_features`` -> ``fruit_classifier``, ``classification_metrics``."""

from kedro.pipeline import Node, Pipeline

from fruits.pipelines.classification.nodes import evaluate_classifier, train_or_reuse_classifier


def create_pipeline(**kwargs) -> Pipeline:
    """Train on the training split, tuning the regularization; score on the test split."""
    return Pipeline(
        [
            Node(
                func=train_or_reuse_classifier,
                inputs=[
                    "pca_features",
                    "explained_variance",
                    "params:classification",
                    "previous_fruit_classifier",
                    "previous_classifier_training",
                ],
                outputs=["fruit_classifier", "classifier_training"],
                name="train_classifier",
            ),
            Node(
                func=evaluate_classifier,
                inputs=[
                    "pca_features",
                    "fruit_classifier",
                    "classifier_training",
                    "params:classification",
                    "previous_classification_metrics",
                ],
                outputs="classification_metrics",
                name="evaluate_classifier",
            ),
        ]
    )
