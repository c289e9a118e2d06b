"""The raw files of a run: their listing, and their bytes read on demand."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits.spark.frames import path_rows

# Hadoop's glob characters: a file name holding one is escaped to be read as itself.
_GLOB_SPECIALS = re.compile(r"([\\\[\]{}*?])")


@dataclass(frozen=True)
class RawFiles:
    """The files under a folder: their listing, and reading their bytes on demand.

    ``listed`` is every file (``path``, ``size``, ``modification_time``), made without
    reading any; ``scan`` makes the ``binaryFile`` source over the whole folder
    (``path``, ``length``, ``modificationTime``, ``content``: Spark lists the folder
    when it is made, so only a run that reads everything makes it); ``empty_paths`` are
    the listed files without bytes (zero-byte files, which the scan skips, and local
    links to nothing): inputs too, read as rows without bytes.
    """

    listed: DataFrame
    scan: Callable[[], DataFrame]
    empty_paths: frozenset[str] = frozenset()

    def listing(self) -> DataFrame:
        """``path``, ``size`` and ``modification_time`` of every file; no byte is read.

        Files without bytes have size 0 and no time.
        """
        return self.listed

    def read_all(self) -> DataFrame:
        """``path``, ``content``, ``size``, ``modification_time`` of every file (all bytes read)."""
        scanned = self.scan().select(
            "path",
            "content",
            F.col("length").alias("size"),
            F.col("modificationTime").alias("modification_time"),
        )
        return scanned.unionByName(_without_bytes(self.listed.where(F.col("size") == 0)))

    def read(self, paths: list[str]) -> DataFrame:
        """The same columns for these files only: only their bytes are read."""
        spark = self.listed.sparkSession
        with_bytes = [path for path in paths if path not in self.empty_paths]
        rows = _without_bytes(path_rows(spark, []))
        if with_bytes:
            escaped = [_GLOB_SPECIALS.sub(r"\\\1", path) for path in with_bytes]
            rows = (
                spark.read.format("binaryFile")
                .load(escaped)
                .select(
                    "path",
                    "content",
                    F.col("length").alias("size"),
                    F.col("modificationTime").alias("modification_time"),
                )
            )
        # Files without bytes, and any that lost them since the listing (the scan skips
        # zero-byte files): rows without bytes.
        asked = path_rows(spark, paths)
        missing = asked.join(rows.select("path"), "path", "left_anti")
        return rows.unionByName(_without_bytes(missing))


def _without_bytes(paths: DataFrame) -> DataFrame:
    return paths.select(
        "path",
        F.lit(bytearray()).cast("binary").alias("content"),
        F.lit(0).cast("long").alias("size"),
        F.lit(None).cast("timestamp").alias("modification_time"),
    )
