"""Featurization pipeline: backbone_weights -> backbone; images + backbone -> image_features."""

from kedro.pipeline import Node, Pipeline

from fruits.pipelines.featurization.nodes import featurize_images, prepare_backbone


def create_pipeline(**kwargs) -> Pipeline:
    """Export the backbone once on the driver, then embed every image with it in Spark."""
    return Pipeline(
        [
            Node(
                func=prepare_backbone,
                inputs=[
                    "backbone_weights",
                    "params:featurization.input_size",
                    "params:featurization.runtime",
                ],
                outputs="backbone",
                name="prepare_backbone",
            ),
            Node(
                func=featurize_images,
                inputs=[
                    "images",
                    "backbone",
                    "params:featurization.batch_size",
                    "params:featurization.images_per_partition",
                    "params:featurization.threads_per_worker",
                ],
                outputs="image_features",
                name="featurize_images",
            ),
        ]
    )
