"""Project hooks: the Spark session (created here only) and the checks before a run."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node, Pipeline
from pyspark import SparkConf
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from fruits.errors import FruitsInputError
from fruits.gdpr import require_eu_region
from fruits.pipelines.featurization.backbone import check_backbone_settings
from fruits.pipelines.reduction.nodes import check_pca_settings
from fruits.refit import check_refit_policy
from fruits.spark_listing import listed_file_count


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


class InputChecks:
    """Refuse a run whose inputs or parameters are bad before any node writes anything.

    Checks what the pipeline being run uses: featurization and reduction parameters,
    the raw image root (exists, holds image files), and the weights file (exists,
    matches its sha256). Each failure is one ``FruitsInputError`` line.
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        """Check parameters first (no I/O), then the weights, then the raw images."""
        inputs = pipeline.inputs()

        def param(name: str) -> Any:  # exactly what the nodes receive
            return catalog.load(f"params:{name}")

        if "params:featurization.backbone" in inputs:
            check_backbone_settings(
                param("featurization.backbone"),
                param("featurization.input_size"),
                param("featurization.runtime"),
            )
        if "params:reduction.variance_target" in inputs:
            check_pca_settings(
                param("reduction.variance_target"), param("reduction.k"), param("reduction.refit")
            )
        if "params:classification.refit" in inputs:
            check_refit_policy("classification.refit", param("classification.refit"))
        if "backbone_weights" in inputs:
            catalog.get("backbone_weights").verify()
        if "raw_images" in inputs:
            _check_raw_images(catalog)


def _check_raw_images(catalog) -> None:
    dataset = catalog.get("raw_images")
    root = str(dataset._describe().get("filepath", "raw_images")).removeprefix("file://")
    try:
        # The source's file listing: no file is read (zero-byte ones count: they are inputs).
        empty = listed_file_count(dataset.load()) == 0
    except Exception as error:
        if _is_missing_path(error):
            raise FruitsInputError(
                f"Raw image folder {root} does not exist: pass "
                "--params=raw_images_path=<folder with one sub-folder per class>."
            ) from error
        raise
    if empty:
        raise FruitsInputError(
            f"Raw image folder {root} holds no image files (.jpg, .jpeg, .png, ...): put the "
            "images there, one sub-folder per class, or point raw_images_path elsewhere."
        )


def _is_missing_path(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, AnalysisException) and "PATH_NOT_FOUND" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


class NodeTimer:
    """Log how long each node took, its outputs' saves included: where a run's time goes.

    Spark work is lazy and happens when the outputs are saved, after ``after_node_run``:
    a node's time runs until its last output is saved.
    """

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._unsaved: dict[str, int] = {}
        self._logger = logging.getLogger(__name__)

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        """Note the node's start."""
        self._started[node.name] = time.perf_counter()
        self._unsaved[node.name] = len(node.outputs)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Node) -> None:
        """Log the node's duration once its last output is saved."""
        self._unsaved[node.name] = self._unsaved.get(node.name, 1) - 1
        if self._unsaved[node.name] == 0 and node.name in self._started:
            seconds = time.perf_counter() - self._started.pop(node.name)
            self._logger.info("Node %s took %.1f s.", node.name, seconds)
