"""Featurization pipeline.

backbone_weights (+ previous_exported_backbone) -> prepared_backbone (+ images, to
calibrate int8) -> exported_backbone; images +
previous_image_feature_store -> image_feature_store (CNN on new contents only, merged);
images + image_feature_store -> image_features, rejected_images (views: nothing written);
images + image_feature_store + exported_backbone (+ table_versions) -> featurization_report.
"""

from kedro.pipeline import Node, Pipeline

from fruits.pipelines.featurization.nodes import (
    prepare_backbone,
    publish_features,
    quantize_backbone,
    summarize_featurization,
    update_feature_store,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Export the backbone once on the driver, embed new image contents in Spark, publish."""
    return Pipeline(
        [
            Node(
                func=prepare_backbone,
                inputs=["backbone_weights", "previous_exported_backbone", "params:featurization"],
                outputs="prepared_backbone",
                name="prepare_backbone",
            ),
            Node(
                func=quantize_backbone,
                # int8 only: calibrated on the image table's training split.
                inputs=[
                    "prepared_backbone",
                    "backbone_weights",
                    "images",
                    "params:featurization",
                    "params:classification",
                ],
                outputs="exported_backbone",
                name="quantize_backbone",
            ),
            Node(
                func=update_feature_store,
                inputs=[
                    "images",
                    "previous_image_feature_store",
                    "exported_backbone",
                    "params:featurization",
                ],
                outputs="image_feature_store",
                name="update_feature_store",
            ),
            Node(
                func=publish_features,
                inputs=["images", "image_feature_store", "exported_backbone"],
                outputs=["image_features", "rejected_images"],
                name="publish_features",
            ),
            Node(
                func=summarize_featurization,
                inputs=[
                    "images",
                    "image_feature_store",
                    "exported_backbone",
                    "image_table_changes",
                    "table_versions",
                    "previous_featurization_report",
                ],
                outputs="featurization_report",
                name="summarize_featurization",
            ),
        ]
    )
