"""Project hooks: the one place where the Spark session is created."""

import os
import sys

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from pyspark import SparkConf
from pyspark.sql import SparkSession


class SparkHooks:
    """Create the Spark session from `conf/<env>/spark.yml` when the Kedro context exists."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Start (or reuse) a classic Spark session configured for the chosen environment.

        A classic (non-Connect) session is required: featurization broadcasts the model
        weights through the SparkContext.
        """
        # Python workers run this interpreter unless the launcher chose one (spark-submit
        # on EMR sets PYSPARK_PYTHON); PySpark only reads that variable, not a Spark conf.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        spark_settings = dict(context.config_loader["spark"])
        app_name = spark_settings.pop("spark.app.name", context.project_path.name)
        spark_conf = SparkConf().setAll((key, str(value)) for key, value in spark_settings.items())
        spark = SparkSession.builder.appName(app_name).config(conf=spark_conf).getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
