"""The image table: one row per image file, following the raw folder from run to run.

A file is read only when it is new or changed: the folder's listing (path, size,
modification time) is compared with the table, so an unchanged file costs a listing
entry, not a download. The content hash stays the image's identity downstream.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fruits.params import IngestionParams
from fruits.spark import delta
from fruits.spark.frames import path_rows
from fruits.spark.listing import RawFiles

logger = logging.getLogger(__name__)

# The table's key, and what says a file changed since it was read.
KEY = ["path"]
FILE_STATE = ["path", "size", "modification_time"]
# An image's place in [0, 1) is its content hash's first 8 hex digits (32 bits) over 2**32.
HASH_DIGITS = 8


def changes(
    raw_files: RawFiles, previous_images: DataFrame | None, params: IngestionParams
) -> tuple[delta.TableChanges, dict[str, Any]]:
    """The image table's changes: files new or changed (read and described), files gone.

    Returns:
        The changes (upserts and deletes keyed by ``path``, persisted: the raw folder is
        read once) and their counts: ``files_read`` (new or changed), ``files_removed``,
        ``raw_bytes_read``.
    """
    if previous_images is None:
        logger.info("Image table: first run, every file under the raw folder is read.")
        read, removed, table_held = raw_files.read_all(), None, None
    else:
        # One pass over the listing and the table's file states (no content): the paths
        # whose state differs, as many as the changes, come to the driver.
        was = previous_images.select(
            "path",
            F.col("size").alias("was_size"),
            F.col("modification_time").alias("was_time"),
        )
        same = F.col("size").eqNullSafe(F.col("was_size")) & F.col("modification_time").eqNullSafe(
            F.col("was_time")
        )
        in_table = F.col("was_size").isNotNull()
        differing = (
            raw_files.listing()
            .join(was, "path", "full_outer")
            .where(~same)
            .select("path", in_table, (in_table & F.col("size").isNull()).alias("gone"))
            .collect()
        )
        if not differing:
            logger.info("Image table: no file new, changed or removed; nothing read.")
            empty = {"files_read": 0, "files_removed": 0, "raw_bytes_read": 0}
            return delta.TableChanges(rows=None), empty
        spark = previous_images.sparkSession
        read = raw_files.read([path for path, _, gone in differing if not gone])
        removed = path_rows(spark, [path for path, _, gone in differing if gone])
        # How many of the changed keys the table holds, known from this join: no query.
        upserts_in_table = [was for _, was, gone in differing if not gone]
        deletes = sum(gone for _, _, gone in differing)
        table_held = {delta.UPSERT: sum(upserts_in_table)} if upserts_in_table else {}
        if deletes:
            table_held[delta.DELETE] = deletes
    rows = delta.upserts(describe(read, params))
    if removed is not None:
        rows = rows.unionByName(delta.deletes(removed, rows))
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    counted = rows.groupBy(delta.CHANGE).agg(
        F.count("*").alias("files"), F.sum("size").alias("bytes")
    )
    by_change = {row[delta.CHANGE]: row for row in counted.collect()}
    upserted = by_change.get(delta.UPSERT)
    summary = {
        "files_read": upserted["files"] if upserted else 0,
        "files_removed": by_change[delta.DELETE]["files"] if delta.DELETE in by_change else 0,
        "raw_bytes_read": int(upserted["bytes"] or 0) if upserted else 0,
    }
    logger.info(
        "Image table: %d file(s) new or changed (%d bytes read), %d removed.",
        summary["files_read"], summary["raw_bytes_read"], summary["files_removed"],
    )  # fmt: skip
    counted_rows = rows if table_held is None else delta.CountedChanges(rows, table_held)
    return delta.TableChanges(rows=lambda: counted_rows), summary


def describe(files: DataFrame, params: IngestionParams) -> DataFrame:
    """Each file's row of the table: label, split and content hash from path and bytes.

    Args:
        files: ``path``, ``content``, ``size``, ``modification_time``.
        params: ``split_folders``: folder names that mark a dataset split (e.g.
            Training, Test) when they are the parent of the class folder;
            ``unsplit_test_share``, ``unsplit_train_split`` and ``unsplit_test_split``:
            how the other images are split.

    Returns:
        Columns ``path`` (the file's Hadoop path), ``label`` (the parent folder),
        ``split``, ``content_hash`` (SHA-256 of the bytes, hex), ``content`` (the encoded
        image), ``size`` and ``modification_time``. ``split`` is the grandparent folder when
        it is one of ``split_folders``; any other image gets ``unsplit_test_split`` when
        the first 8 hex digits of its hash, over 2**32, are below ``unsplit_test_share``,
        else ``unsplit_train_split``: copies of one image outside the split folders get
        the same split (never both), on every run and machine.
    """
    content_hash = F.sha2("content", 256)
    split_folder = _path_segment(F.col("path"), 3)
    split = F.when(split_folder.isin(params.split_folders), split_folder).otherwise(
        _split_from_hash(content_hash, params)
    )
    return files.select(
        "path",
        _path_segment(F.col("path"), 2).alias("label"),
        split.alias("split"),
        content_hash.alias("content_hash"),
        "content",
        "size",
        "modification_time",
    )


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
