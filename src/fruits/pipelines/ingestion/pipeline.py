"""Ingestion pipeline: ``raw_images`` (files) -> ``images`` (a Delta table, merged)."""

from kedro.pipeline import Node, Pipeline

from fruits.pipelines.ingestion.nodes import update_image_table


def create_pipeline(**kwargs) -> Pipeline:
    """Read the new and changed image files once; the table keeps the rest."""
    return Pipeline(
        [
            Node(
                func=update_image_table,
                inputs=["raw_images", "previous_images", "params:ingestion"],
                outputs=["images", "image_table_changes"],
                name="update_image_table",
            ),
        ]
    )
