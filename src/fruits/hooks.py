"""Project hooks: the one place where the Spark session is created."""

import os
import sys

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from pyspark import SparkConf
from pyspark.sql import SparkSession

from fruits.gdpr import require_eu_region


class SparkHooks:
    """Create the Spark session from `conf/<env>/spark.yml` when the Kedro context exists."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Start (or reuse) a classic Spark session configured for the chosen environment.

        Environments that set ``aws_region`` in their globals (emr) must name an EU region;
        otherwise the run stops here, before Spark starts. A classic (non-Connect) session
        is required: featurization broadcasts the model weights through the SparkContext.
        """
        aws_region = context.config_loader["globals"].get("aws_region")
        if aws_region is not None:
            require_eu_region(aws_region)
        # Python workers run this interpreter unless the launcher chose one (spark-submit
        # on EMR sets PYSPARK_PYTHON); PySpark only reads that variable, not a Spark conf.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        spark_settings = dict(context.config_loader["spark"])
        app_name = spark_settings.pop("spark.app.name", context.project_path.name)
        spark_conf = SparkConf().setAll((key, str(value)) for key, value in spark_settings.items())
        spark = SparkSession.builder.appName(app_name).config(conf=spark_conf).getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
