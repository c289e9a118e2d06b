"""Nodes of the ingestion pipeline."""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fruits.params import IngestionParams


def _path_segment(path: Column, from_end: int) -> Column:
    """Folder name ``from_end`` levels up a Hadoop path (names appear as they are)."""
    return F.element_at(F.split(path, "/"), -from_end)


def build_image_table(raw_images: DataFrame, params: IngestionParams) -> DataFrame:
    """One row per image file with what later steps need.

    Args:
        raw_images: ``path`` and ``content`` of every file (``ImageFilesDataset``).
        params: ``split_folders``: folder names that mark a dataset split (e.g.
            Training, Test) when they are the parent of the class folder.

    Returns:
        Columns ``path`` (the file's Hadoop path), ``label`` (the parent folder),
        ``split`` (the grandparent folder when it is one of ``split_folders``, else
        null), ``content_hash`` (SHA-256 of the bytes) and ``content`` (the encoded image).
    """
    label = _path_segment(F.col("path"), 2)
    split_folder = _path_segment(F.col("path"), 3)
    return raw_images.select(
        "path",
        label.alias("label"),
        F.when(split_folder.isin(params.split_folders), split_folder).alias("split"),
        F.sha2("content", 256).alias("content_hash"),
        "content",
    )
