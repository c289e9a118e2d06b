"""Nodes of the ingestion pipeline."""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fruits.spark_listing import listed_files


def _path_segment(path: Column, from_end: int) -> Column:
    """Folder name ``from_end`` levels up a path.

    The scan's ``path`` is a Hadoop path, not a URI: names appear as they are
    (``Pêche + plate``, ``100% juice``), with nothing to decode.
    """
    return F.element_at(F.split(path, "/"), -from_end)


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
    return _with_empty_files(raw_images).select(
        "path",
        label.alias("label"),
        F.when(split_folder.isin(split_folders), split_folder).alias("split"),
        F.sha2("content", 256).alias("content_hash"),
        "content",
    )


def _with_empty_files(raw_images: DataFrame) -> DataFrame:
    """``path`` and ``content`` of every listed file, zero-byte files included.

    Spark's file scan skips zero-byte files, but they are inputs too (a failed upload
    is a file to report, not to lose): the source's file listing still names them.
    """
    listed = listed_files(raw_images)
    # The listing gives URIs (file:///a/b%20c.jpg), the scan Hadoop paths (file:/a/b c.jpg).
    # url_decode follows form encoding (+ is a space): a URI's literal + is escaped first.
    as_path = F.url_decode(
        F.regexp_replace(F.regexp_replace("uri", r"^file:///", "file:/"), r"\+", "%2B")
    )
    empty_files = (
        listed.select(as_path.alias("path"))
        .join(raw_images.select("path"), "path", "left_anti")
        .withColumn("content", F.lit(bytearray()).cast("binary"))
    )
    return raw_images.select("path", "content").unionByName(empty_files)
