"""A file source's listing, kept in the JVM.

``DataFrame.inputFiles()`` copies the listing into a Python list one py4j call per
file: about 1 s for 5,000 files on a cold JVM, and then as much again to turn the list
back into a DataFrame. These helpers use the same listing without the round trips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def listed_file_count(files: DataFrame) -> int:
    """How many files the file source behind ``files`` lists (zero-byte ones included)."""
    return len(files._jdf.inputFiles())  # a Java String[]: its length is one call


def listed_files(files: DataFrame) -> DataFrame:
    """One row per file the source lists, zero-byte ones included: column ``uri``."""
    spark = files.sparkSession
    uris = files._jdf.inputFiles()
    # WrappedArray.make takes the array as an Object: py4j cannot pass a String[] to
    # Scala's generic varargs helpers (Arrays.asList, Predef.wrapRefArray).
    jvm = spark._jvm
    uri_seq = jvm.scala.collection.mutable.WrappedArray.make(uris)
    as_strings = jvm.org.apache.spark.sql.Encoders.STRING()
    dataset = spark._jsparkSession.createDataset(uri_seq, as_strings)
    return DataFrame(dataset.toDF(), spark).withColumnRenamed("value", "uri")


def unscanned_files(files: DataFrame) -> DataFrame:
    """``path`` of the files the source lists but its scan skips: the zero-byte ones.

    Spark's file scan skips zero-byte files, but they are inputs too (a failed upload
    is a file to report, not to lose): the source's file listing still names them.
    ``path`` is a Hadoop path as the scan gives it (``file:/a/b c.jpg``), not a URI. Only
    paths are compared: no file is read.
    """
    # The listing gives URIs (file:///a/b%20c.jpg), the scan Hadoop paths (file:/a/b c.jpg).
    # url_decode follows form encoding (+ is a space): a URI's literal + is escaped first.
    as_path = F.url_decode(
        F.regexp_replace(F.regexp_replace("uri", r"^file:///", "file:/"), r"\+", "%2B")
    )
    return (
        listed_files(files)
        .select(as_path.alias("path"))
        .join(files.select("path"), "path", "left_anti")
    )


# Hadoop's glob characters: a file name holding one is escaped to be read as itself.
_GLOB_SPECIALS = re.compile(r"([\\\[\]{}*?])")


@dataclass(frozen=True)
class RawFiles:
    """The files under a folder: their listing, and reading their bytes on demand.

    ``files`` is the ``binaryFile`` source over the whole folder (``path``, ``length``,
    ``modificationTime``, ``content``); ``extra_paths`` are files the source cannot list
    but that are inputs (a local symbolic link to nothing): rows without bytes.
    """

    files: DataFrame
    extra_paths: tuple[str, ...] = ()

    def listing(self) -> DataFrame:
        """``path``, ``size`` and ``modification_time`` of every file; no byte is read.

        Zero-byte files (which the scan skips) and ``extra_paths`` have size 0 and no time.
        """
        scanned = self.files.select(
            "path",
            F.col("length").alias("size"),
            F.col("modificationTime").alias("modification_time"),
        )
        unscanned = self._unscanned_paths().select(
            "path",
            F.lit(0).cast("long").alias("size"),
            F.lit(None).cast("timestamp").alias("modification_time"),
        )
        return scanned.unionByName(unscanned)

    def read_all(self) -> DataFrame:
        """``path``, ``content``, ``size``, ``modification_time`` of every file (all bytes read)."""
        scanned = self.files.select(
            "path",
            "content",
            F.col("length").alias("size"),
            F.col("modificationTime").alias("modification_time"),
        )
        return scanned.unionByName(_without_bytes(self._unscanned_paths()))

    def read(self, paths: list[str]) -> DataFrame:
        """The same columns for these files only: only their bytes are read."""
        spark = self.files.sparkSession
        with_bytes = [path for path in paths if path not in self.extra_paths]
        rows = _without_bytes(spark.createDataFrame([(p,) for p in paths], "path string")).limit(0)
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
        # Zero-byte files (not scanned) and dangling links: rows without bytes.
        missing = spark.createDataFrame([(p,) for p in paths], "path string").join(
            rows.select("path"), "path", "left_anti"
        )
        return rows.unionByName(_without_bytes(missing))

    def _unscanned_paths(self) -> DataFrame:
        """``path`` of the listed files the scan skips (zero bytes), and ``extra_paths``."""
        spark = self.files.sparkSession
        empty = unscanned_files(self.files)
        if not self.extra_paths:
            return empty
        extra = spark.createDataFrame([(path,) for path in self.extra_paths], "path string")
        return empty.unionByName(extra)


def _without_bytes(paths: DataFrame) -> DataFrame:
    return paths.select(
        "path",
        F.lit(bytearray()).cast("binary").alias("content"),
        F.lit(0).cast("long").alias("size"),
        F.lit(None).cast("timestamp").alias("modification_time"),
    )
