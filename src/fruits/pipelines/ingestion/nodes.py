"""Nodes of the ingestion pipeline."""

from typing import Any

from pyspark.sql import DataFrame

from fruits.params import IngestionParams
from fruits.spark import image_table
from fruits.spark.delta import TableChanges
from fruits.spark.listing import RawFiles


def update_image_table(
    raw_images: RawFiles, previous_images: DataFrame | None, params: IngestionParams
) -> tuple[TableChanges, dict[str, Any]]:
    """The image table's changes: new or changed files read and described, removed ones.

    Unchanged files (same path, size and modification time as in the table) are not read.
    Each row: ``path``, ``label`` (parent folder), ``split`` (split folder, else from the
    content hash), ``content_hash`` (SHA-256), ``content``, ``size``, ``modification_time``.

    Returns:
        The changes (merged into ``images``) and their counts (``image_table_changes``).
    """
    return image_table.changes(raw_images, previous_images, params)
