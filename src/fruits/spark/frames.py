"""Small DataFrames made on the driver without Spark's Python workers.

A DataFrame made from a Python list is unpickled by Python workers, which a run otherwise
starts only for the CNN: their start-up (~1.2 s in a re-run's image table here) for a
list of paths. These are made in the JVM instead.
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType


def path_rows(spark: SparkSession, paths: list[str]) -> DataFrame:
    """``paths`` as rows of one ``path`` column (``string_rows``)."""
    return string_rows(spark, "path", paths)


def string_rows(spark: SparkSession, column: str, values: list[str]) -> DataFrame:
    """``values`` as rows of one string ``column``, made in the JVM from one Arrow batch
    (``spark.sql.execution.arrow.pyspark.enabled``, on in conf/base)."""
    schema = f"`{column}` string"
    if not values:
        return empty_rows(spark, schema)
    return spark.createDataFrame(pd.DataFrame({column: values}, dtype=object), schema)


def empty_rows(spark: SparkSession, schema: StructType | str) -> DataFrame:
    """No rows, in ``schema``: no partition, so no task (nor Python worker) ever runs."""
    return spark.createDataFrame(spark.sparkContext.emptyRDD(), schema)
