"""A file source's listing, kept in the JVM.

``DataFrame.inputFiles()`` copies the listing into a Python list one py4j call per
file: about 1 s for 5,000 files on a cold JVM, and then as much again to turn the list
back into a DataFrame. These helpers use the same listing without the round trips.
"""

from __future__ import annotations

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


def with_empty_files(files: DataFrame) -> DataFrame:
    """``path`` and ``content`` of every listed file, zero-byte files included.

    Spark's file scan skips zero-byte files, but they are inputs too (a failed upload
    is a file to report, not to lose): the source's file listing still names them.
    ``path`` is a Hadoop path as the scan gives it (``file:/a/b c.jpg``), not a URI.
    """
    # The listing gives URIs (file:///a/b%20c.jpg), the scan Hadoop paths (file:/a/b c.jpg).
    # url_decode follows form encoding (+ is a space): a URI's literal + is escaped first.
    as_path = F.url_decode(
        F.regexp_replace(F.regexp_replace("uri", r"^file:///", "file:/"), r"\+", "%2B")
    )
    empty_files = (
        listed_files(files)
        .select(as_path.alias("path"))
        .join(files.select("path"), "path", "left_anti")
        .withColumn("content", F.lit(bytearray()).cast("binary"))
    )
    return files.select("path", "content").unionByName(empty_files)
