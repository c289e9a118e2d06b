"""Project hooks: the Spark session (created here only) and the checks before a run."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node, Pipeline
from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from fruits.errors import FruitsInputError
from fruits.gdpr import require_eu_azure_region, require_eu_region
from fruits.model_manifest import MODELS, ModelsMissingError, digests_on_storage
from fruits.spark.delta import RUN_METADATA_KEY
from fruits.spark.embedding import start_python_workers
from fruits.spark.settings import as_spark_settings


class SparkHooks:
    """Create the Spark session from `conf/<env>/spark.yml` when the Kedro context exists."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Start (or reuse) a classic Spark session configured for the chosen environment.

        ``conf/<env>/spark.yml`` gives defaults: a setting the launcher already gave
        (``spark-submit --conf``, the cluster's ``spark-defaults``) wins, as Spark's own
        precedence has it. Environments that set ``aws_region`` (emr, ec2) or
        ``azure_region`` (azure) in their globals must name an EU region; otherwise the
        run stops here, before Spark starts. A classic (non-Connect) session is required:
        featurization broadcasts the model weights through the SparkContext.
        """
        cloud_globals = context.config_loader["globals"]
        if cloud_globals.get("aws_region") is not None:
            require_eu_region(cloud_globals["aws_region"])
        if cloud_globals.get("azure_region") is not None:
            require_eu_azure_region(cloud_globals["azure_region"])
        _refuse_spark_connect()
        # Python workers run this interpreter unless the launcher chose one (spark-submit
        # on EMR sets PYSPARK_PYTHON); PySpark only reads that variable, not a Spark conf.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # Spark ML's native BLAS (OpenBLAS, when installed: `make setup` on Debian) runs
        # inside Spark's own task parallelism: one thread per call, or its threads fight
        # Spark's for the cores (the classifier took 14 s instead of 7.5 s here).
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        spark_settings = dict(context.config_loader["spark"])
        app_name = spark_settings.pop("spark.app.name", context.project_path.name)
        if "PYSPARK_GATEWAY_PORT" in os.environ:
            # Started by spark-submit (an EMR step, YARN cluster mode): its JVM is up and holds
            # the launcher's settings. Connect first, or SparkConf() sees none of them and
            # spark.yml would override the cluster's spark-defaults (the YARN rehearsal
            # caught it: the event log went to the configured placeholder bucket).
            SparkContext._ensure_initialized()
        spark_conf = SparkConf()
        for key, value in as_spark_settings(spark_settings).items():
            spark_conf.setIfMissing(key, value)
        # Jars add up: the launcher's (S3A's, say) and the environment's (Delta's).
        if jars := _joined_jars(spark_conf.get("spark.jars"), spark_settings):
            spark_conf.set("spark.jars", jars)
        spark = SparkSession.builder.appName(app_name).config(conf=spark_conf).getOrCreate()
        _refuse_spark_connect(spark)
        spark.sparkContext.setLogLevel("WARN")
        _quiet_interrupt(spark.sparkContext)


def _joined_jars(given: str | None, spark_settings: dict[str, Any]) -> str:
    """``spark.jars`` of the launcher followed by those of ``spark.yml`` not already there."""
    jars = [jar for jar in (given or "").split(",") if jar]
    configured = str(spark_settings.get("spark.jars") or "")
    return ",".join(jars + [jar for jar in configured.split(",") if jar and jar not in jars])


# Spark Connect (Databricks serverless and shared access mode, `SPARK_REMOTE`) has no
# SparkContext: featurization broadcasts the weights through it.
_CONNECT_VARIABLES = ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")


def _refuse_spark_connect(spark: Any = None) -> None:
    """One line instead of a Py4J trace when the session is (or would be) Spark Connect."""
    connect = any(name in os.environ for name in _CONNECT_VARIABLES) or (
        spark is not None and type(spark).__module__.startswith("pyspark.sql.connect")
    )
    if connect:
        raise FruitsInputError(
            "this run needs a classic Spark session with a SparkContext (the backbone's "
            "weights are broadcast through it), and this one is Spark Connect (Databricks "
            "serverless or shared access mode, or SPARK_REMOTE set): run it on a classic cluster "
            "in dedicated (single user) access mode, or unset SPARK_REMOTE."
        )


def _quiet_interrupt(spark_context: SparkContext) -> None:
    """Ctrl-C: cancel the Spark jobs as PySpark does, without the JVM's traces of them.

    PySpark's own handler cancels every job and raises KeyboardInterrupt, and the JVM
    then logs each killed task with its stack trace (hundreds of lines after the run's
    one-line message). Silenced first; the CLI prints the one line (fruits.cli).
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread

    def on_interrupt(signum: int, frame: Any) -> None:
        spark_context.setLogLevel("OFF")
        spark_context.cancelAllJobs()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)


class OneWriter:
    """One run at a time per data root, and every Delta commit named after its run.

    Once the inputs are checked (nothing is written before: a refused run leaves no trace),
    the run takes the data root's lock (``run_lock``, ``fruits.datasets.RunLockDataset``): a
    second run on the same root stops at once with one line. The lock is left when the run ends,
    failed or not; a lock left by a killed run is taken over. The run's identity goes into
    every Delta commit it makes (``userMetadata``), so ``table_versions`` finds them.
    """

    def __init__(self) -> None:
        self._lock: Any = None

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any], catalog: Any) -> None:
        """Take the lock, then label the session's Delta commits with the run."""
        run = f"kedro run {run_params.get('run_id') or run_params.get('session_id')}"
        self._lock = catalog.get("run_lock")
        if self._lock is not None:
            self._lock.acquire(run)
        spark = SparkSession.getActiveSession()
        if spark is not None:
            spark.conf.set(RUN_METADATA_KEY, json.dumps({"run": run}))

    @hook_impl
    def after_pipeline_run(self) -> None:
        """Leave the lock."""
        self._release()

    @hook_impl
    def on_pipeline_error(self) -> None:
        """Leave the lock: the tables are whole (each commit is), the next run goes on."""
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class InputChecks:
    """Refuse a run whose inputs are unusable before any node writes anything.

    Every input dataset of the pipeline being run that has a ``verify()`` method is
    verified (the weights file exists and matches its sha256; the raw image folder
    exists and holds image files): a dataset that can be checked says so itself.
    Parameters are validated earlier, when Kedro builds the run's catalog
    (``fruits.params``). Each failure is one ``FruitsInputError`` line.
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        """Verify the pipeline's free inputs, in name order."""
        for name in sorted(pipeline.inputs()):
            verify = getattr(catalog.get(name), "verify", None)
            if callable(verify):
                verify()


class NodeTimer:
    """Log how long each node took, its outputs' saves included: where a run's time goes.

    Spark work is lazy and happens when the outputs are saved, after ``after_node_run``:
    a node's time runs until its last output is saved. The Spark jobs of a node (its
    inputs' loads, its body, its outputs' saves, all in the node's thread) carry the node's
    name as their job group: the Spark UI and the History Server tell which node ran what.
    """

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._unsaved: dict[str, int] = {}
        self._logger = logging.getLogger(__name__)

    @hook_impl
    def before_dataset_loaded(self, node: Node) -> None:
        """Label the Spark jobs of the node's loads with its name."""
        _label_spark_jobs(node.name)

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        """Note the node's start."""
        _label_spark_jobs(node.name)
        self._started[node.name] = time.perf_counter()
        self._unsaved[node.name] = len(node.outputs)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Node) -> None:
        """Log the node's duration once its last output is saved."""
        self._unsaved[node.name] = self._unsaved.get(node.name, 1) - 1
        if self._unsaved[node.name] == 0 and node.name in self._started:
            seconds = time.perf_counter() - self._started.pop(node.name)
            self._logger.info("Node %s took %.2f s.", node.name, seconds)


def _label_spark_jobs(node_name: str) -> None:
    """Name the calling thread's next Spark jobs' group after the node (a thread-local
    property: Kedro's ThreadRunner runs each node, loads and saves in one thread)."""
    spark_context = SparkContext._active_spark_context  # noqa: SLF001 - None without Spark
    if spark_context is not None:
        spark_context.setJobGroup(node_name, f"Kedro node {node_name}")


# The early start's Spark job group (the Spark UI and event logs name it so) and its thread.
EARLY_START_JOB_GROUP = "python_workers"


class EarlyPythonWorkers:
    """Start the CNN's Python workers once the run knows it read new files, beside other work.

    New or changed files (``image_table_changes``) mean contents the CNN may embed, a few
    nodes later: the workers start then, in a background Spark job (about 3 s of a core,
    overlapping the image table's MERGE), and the CNN job finds them ready. A run that read
    nothing starts none. Best effort: a failure there is logged, the run goes on.
    """

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        """After the image table's changes are known (before they are saved)."""
        changes = outputs.get("image_table_changes")
        spark_running = SparkContext._active_spark_context is not None  # noqa: SLF001
        if isinstance(changes, dict) and changes.get("files_read") and spark_running:
            # The run's session (a node's thread may have no active session of its own).
            spark = SparkSession.builder.getOrCreate()
            threading.Thread(
                target=_start_python_workers, args=(spark,), name=EARLY_START_JOB_GROUP, daemon=True
            ).start()


def _start_python_workers(spark: SparkSession) -> None:
    """``start_python_workers`` as its own job group; a failure is logged, not raised."""
    logger = logging.getLogger(__name__)
    try:
        spark.sparkContext.setJobGroup(
            EARLY_START_JOB_GROUP, "Start the CNN's Python workers early"
        )
        workers = start_python_workers(spark)
        logger.debug("Python workers started early: %s.", workers)
    except Exception as error:  # noqa: BLE001 - an optimisation: the CNN job starts them anyway
        logger.info("Python workers not started early (the CNN job will): %s", error)


class RunSummary:
    """Log what the run did in one line, at its end: on a cluster, in the driver's log.

    Images accepted and rejected, contents new and reused, k, accuracy: whichever of
    the run's reports its pipeline wrote.
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger(__name__)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        """Read back the reports this run saved and log the summary line."""
        written = pipeline.all_outputs()
        reports = {
            name: catalog.load(name)
            for name in ("featurization_report", "explained_variance", "classification_metrics")
            if name in written
        }
        if reports:
            self._logger.info("Run summary: %s.", run_summary(reports))


def run_summary(reports: dict[str, dict[str, Any]]) -> str:
    """One sentence per report: featurization counts, PCA size, test accuracy."""
    parts = []
    if featurization := reports.get("featurization_report"):
        parts.append(
            f"{featurization['image_files']} image files, {featurization['accepted']} accepted, "
            f"{featurization['rejected']} rejected; CNN on {featurization['contents_new']} new "
            f"contents, {featurization['contents_reused']} reused"
        )
    if variance := reports.get("explained_variance"):
        parts.append(f"PCA k = {variance['k']} ({variance['variance_at_k']:.1%} of the variance)")
    if metrics := reports.get("classification_metrics"):
        parts.append(
            f"test accuracy {metrics['accuracy']:.2%} on {metrics['n_test_images']} images "
            f"(macro-F1 {metrics['macro_f1']:.3f})"
        )
    return "; ".join(parts)


class ModelManifestHook:
    """Record the models a successful run leaves (``model_manifest``), for the services.

    Written after the run, once every model it wrote is complete: a prediction service
    swaps in the version the manifest names, never a mix of a run's new and old models.
    """

    @hook_impl
    def after_pipeline_run(self, pipeline: Pipeline, catalog: Any) -> None:
        """Write the manifest if the run wrote any model and all three exist."""
        if not set(MODELS) & pipeline.all_outputs():
            return
        try:
            version = digests_on_storage(catalog)
        except ModelsMissingError as error:  # e.g. --pipelines featurization on new outputs
            logging.getLogger(__name__).info("No model manifest written: %s", error)
            return
        catalog.save("model_manifest", version)
