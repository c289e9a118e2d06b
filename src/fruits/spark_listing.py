"""A file source's listing, kept in the JVM.

``DataFrame.inputFiles()`` copies the listing into a Python list one py4j call per
file: about 1 s for 5,000 files on a cold JVM, and then as much again to turn the list
back into a DataFrame. These helpers use the same listing without the round trips.
"""

from __future__ import annotations

from pyspark.sql import DataFrame


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
