"""Nodes of the ingestion pipeline."""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fruits.params import IngestionParams

# An image's place in [0, 1) is its content hash's first 8 hex digits (32 bits) over 2**32.
HASH_DIGITS = 8


def _path_segment(path: Column, from_end: int) -> Column:
    """Folder name ``from_end`` levels up a Hadoop path (names appear as they are)."""
    return F.element_at(F.split(path, "/"), -from_end)


def _split_from_hash(content_hash: Column, params: IngestionParams) -> Column:
    """``unsplit_test_split`` when the hash's place in [0, 1) is below the share, else train.

    Exact in doubles (a 32-bit integer over a power of two), so the same bytes get the same
    split on every run and machine.
    """
    place = F.conv(F.substring(content_hash, 1, HASH_DIGITS), 16, 10).cast("long") / F.lit(2**32)
    return F.when(place < params.unsplit_test_share, F.lit(params.unsplit_test_split)).otherwise(
        F.lit(params.unsplit_train_split)
    )


def build_image_table(raw_images: DataFrame, params: IngestionParams) -> DataFrame:
    """One row per image file with what later steps need.

    Args:
        raw_images: ``path`` and ``content`` of every file (``ImageFilesDataset``).
        params: ``split_folders``: folder names that mark a dataset split (e.g.
            Training, Test) when they are the parent of the class folder;
            ``unsplit_test_share``, ``unsplit_train_split`` and ``unsplit_test_split``:
            how the other images are split.

    Returns:
        Columns ``path`` (the file's Hadoop path), ``label`` (the parent folder),
        ``split``, ``content_hash`` (SHA-256 of the bytes, hex) and ``content`` (the
        encoded image). ``split`` is the grandparent folder when it is one of
        ``split_folders``; any other image gets ``unsplit_test_split`` when the first
        8 hex digits of its hash, over 2**32, are below ``unsplit_test_share``, else
        ``unsplit_train_split``: copies of one image outside the split folders get the
        same split (never both), on every run and machine.
    """
    hashed = raw_images.withColumn("content_hash", F.sha2("content", 256))
    label = _path_segment(F.col("path"), 2)
    split_folder = _path_segment(F.col("path"), 3)
    split = F.when(split_folder.isin(params.split_folders), split_folder).otherwise(
        _split_from_hash(F.col("content_hash"), params)
    )
    return hashed.select(
        "path",
        label.alias("label"),
        split.alias("split"),
        "content_hash",
        "content",
    )
