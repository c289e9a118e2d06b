"""Nodes of the ingestion pipeline."""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def _path_segment(path: Column, from_end: int) -> Column:
    """Folder name ``from_end`` levels up a Spark file URI, URI-decoded.

    Spark reports paths as URIs (a space is ``%20``); ``url_decode`` follows form
    encoding and would turn a literal ``+`` into a space, so ``+`` is escaped first.
    """
    segment = F.element_at(F.split(path, "/"), -from_end)
    return F.url_decode(F.regexp_replace(segment, r"\+", "%2B"))


def build_image_table(raw_images: DataFrame, split_folders: list[str]) -> DataFrame:
    """Turn Spark ``binaryFile`` rows into one row per image with what later steps need.

    Args:
        raw_images: Output of Spark's ``binaryFile`` source (``path``, ``content``, ...).
        split_folders: Folder names that mark a dataset split (e.g. Training, Test)
            when they are the parent of the class folder.

    Returns:
        Columns ``path`` (the file URI), ``label`` (the parent folder), ``split`` (the
        grandparent folder when it is one of ``split_folders``, else null),
        ``content_hash`` (SHA-256 of the bytes) and ``content`` (the encoded image).
    """
    label = _path_segment(F.col("path"), 2)
    split_folder = _path_segment(F.col("path"), 3)
    return raw_images.select(
        "path",
        label.alias("label"),
        F.when(split_folder.isin(split_folders), split_folder).alias("split"),
        F.sha2("content", 256).alias("content_hash"),
        "content",
    )
