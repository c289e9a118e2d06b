"""Featurization pipeline: ``images`` + ``backbone_weights`` -> ``image_features``."""

from kedro.pipeline import Node, Pipeline

from fruits.pipelines.featurization.nodes import featurize_images


def create_pipeline(**kwargs) -> Pipeline:
    """Embed every image with the broadcast MobileNetV2 backbone."""
    return Pipeline(
        [
            Node(
                func=featurize_images,
                inputs=[
                    "images",
                    "backbone_weights",
                    "params:featurization.input_size",
                    "params:featurization.batch_size",
                    "params:featurization.images_per_partition",
                    "params:featurization.intra_op_threads",
                ],
                outputs="image_features",
                name="featurize_images",
            ),
        ]
    )
