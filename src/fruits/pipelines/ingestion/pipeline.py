"""Ingestion pipeline: ``raw_images`` (files) -> ``images`` (Parquet)."""

from kedro.pipeline import Node, Pipeline

from fruits.pipelines.ingestion.nodes import build_image_table


def create_pipeline(**kwargs) -> Pipeline:
    """Read every image file once and store it with its label, split and hash."""
    return Pipeline(
        [
            Node(
                func=build_image_table,
                inputs=["raw_images", "params:ingestion"],
                outputs="images",
                name="build_image_table",
            ),
        ]
    )
