"""The project run in this process as ``kedro run --env local`` runs it.

Every measured run is a ``KedroSession`` of the project (``conf/`` merged by the
project's settings, its catalog, hooks and default runner) with a fresh ``data_root``:
nothing is wired by hand. Parameters are overridden the way ``--params`` does it, through
``runtime_params`` (deep-merged into ``conf``: ``{"featurization": {"batch_size": 8}}``
changes that one value). One Spark application serves every run: the project's Spark
hook reuses the running session (``getOrCreate``), so runs after the first are warm.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kedro.runner
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from pyspark.errors import PySparkRuntimeError
from pyspark.sql import SparkSession

from benchmarks import REPO
from benchmarks.images import ImageFilter, RawImages
from fruits.hooks import NodeTimer

ENV = "local"
# What row (c) and its variants run: from the raw files to `image_features`...
STAGE_PIPELINES = ("ingestion", "featurization")
# ...and time: these nodes' seconds (NodeTimer: inputs loaded, outputs saved), as the stage
# was measured before the benchmark ran through Kedro. Left out: reading the weights and
# the TFLite export (a fixed per-run cost on the driver, in row (d)) and the summary report.
STAGE_NODES = ("update_image_table", "update_feature_store", "publish_features")
# The message NodeTimer logs for each node, with (node name, seconds) as its arguments.
NODE_TIMER_MESSAGE = "Node %s took %.2f s."


class ProjectRunner(kedro.runner.SequentialRunner):
    """Kedro's sequential runner, optionally with Spark settings changed.

    Sequential, unlike ``kedro run``'s default here (ThreadRunner, row (d)): the stage's
    nodes are timed one at a time, with no export on the driver competing for the cores.

    The project's Spark hook applies ``conf/<env>/spark*.yml`` to the running session
    each time a session's context is created, so a setting changed before
    ``session.run`` would be undone: the runner changes it once the hooks have run,
    for the nodes only, and restores it afterwards.
    """

    def __init__(self, spark_settings: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._spark_settings = dict(spark_settings or {})

    def run(self, pipeline: Any, catalog: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if not self._spark_settings:
            return super().run(pipeline, catalog, *args, **kwargs)
        conf = SparkSession.active().conf
        previous = {key: conf.get(key, None) for key in self._spark_settings}
        for key, value in self._spark_settings.items():
            conf.set(key, value)
        try:
            return super().run(pipeline, catalog, *args, **kwargs)
        finally:
            for key, value in previous.items():
                if value is None:
                    conf.unset(key)
                else:
                    conf.set(key, value)


class _NodeTimes(logging.Handler):
    """Collects the seconds of each node as the project's NodeTimer hook logs them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == NODE_TIMER_MESSAGE and isinstance(record.args, tuple):
            name, seconds = record.args
            self.seconds[name] = float(seconds)


@contextmanager
def node_times() -> Iterator[dict[str, float]]:
    """Seconds of each node run inside the block (saves included), by node name."""
    logger = logging.getLogger(NodeTimer.__module__)
    handler = _NodeTimes()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # collected, not printed
    try:
        yield handler.seconds
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def quiet_project_logs() -> None:
    """Kedro's and the project's INFO lines off the console: the figures are the output."""
    for name in ("kedro", "fruits"):
        logging.getLogger(name).setLevel(logging.WARNING)


def running_spark() -> SparkSession | None:
    """The Spark session the project's hook started, if one is running."""
    try:
        return SparkSession.active()
    except PySparkRuntimeError:
        return None


def stop_spark() -> None:
    """Stop the running Spark application (its Python workers with it)."""
    spark = running_spark()
    if spark is not None:
        spark.stop()


def _spark_job_ids() -> set[int]:
    spark = running_spark()
    if spark is None:
        return set()
    return set(spark.sparkContext.statusTracker().getJobIdsForGroup())


@dataclass(frozen=True)
class ProjectSettings:
    """What the benchmark reads from the project's configuration, through a context."""

    # Validated parameters: params["featurization"] is a FeaturizationParams.
    params: dict[str, Any]
    # The catalog's raw_images entry (its load_args select the image files).
    raw_images: dict[str, Any]
    # conf/<env>/spark*.yml, merged.
    spark: dict[str, Any]

    @property
    def image_filter(self) -> ImageFilter:
        return ImageFilter.from_catalog_entry(self.raw_images)


@dataclass(frozen=True)
class Stage:
    """One run of the ingestion and featurization pipelines, as a user would start it."""

    raw: RawImages
    # Runtime overrides of parameters_featurization.yml, e.g. {"batch_size": 8}.
    featurization: Mapping[str, Any] = field(default_factory=dict)
    # Spark SQL settings changed for this run only.
    spark_settings: Mapping[str, str] = field(default_factory=dict)
    # Names the run's data_root (a fresh folder under the work directory).
    label: str = "stage"
    # Keep the run's outputs (its data_root) for reading afterwards: then discard them.
    keep: bool = False


@dataclass(frozen=True)
class StageRun:
    """A measured run: wall time of ``session.run``, node times, Spark jobs, outputs."""

    wall_seconds: float
    nodes: dict[str, float]
    jobs: int
    data_root: Path

    @property
    def seconds(self) -> float:
        """The stage's time: the sum of ``STAGE_NODES``' seconds."""
        return sum(self.node(name) for name in STAGE_NODES)

    def node(self, name: str) -> float:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(
                f"No time logged for node {name!r} (got {sorted(self.nodes)}): has "
                "fruits.hooks.NodeTimer's message or the node's name changed?"
            ) from None


@dataclass
class Project:
    """The Kedro project at the repository's root, run in this process."""

    weights: Path
    workdir: Path
    sha256: str | None = None
    _runs: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def __post_init__(self) -> None:
        bootstrap_project(REPO)

    def runtime_params(
        self, raw: RawImages, data_root: Path, featurization: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """What ``kedro run --params`` would pass: paths, weights, parameter overrides."""
        params: dict[str, Any] = {
            "raw_images_path": raw.path,
            "data_root": str(data_root),
            "weights_source": str(self.weights),
        }
        if self.sha256:
            params["weights_sha256"] = self.sha256
        if featurization:
            params["featurization"] = dict(featurization)
        return params

    def session(self, runtime_params: dict[str, Any]) -> KedroSession:
        return KedroSession.create(
            project_path=REPO, env=ENV, runtime_params=runtime_params, save_on_close=False
        )

    def settings(self) -> ProjectSettings:
        """Parameters, the raw_images entry and Spark settings, from a session's context.

        Creating the context runs the project's Spark hook: the first Spark session of
        this process starts here, with ``conf/local``'s settings (JVM options included).
        """
        with self.session({"data_root": str(self.workdir / "settings")}) as session:
            context = session.load_context()
            loader = context.config_loader
            return ProjectSettings(
                params=context.params,
                raw_images=dict(loader["catalog"]["raw_images"]),
                spark=dict(loader["spark"]),
            )

    def new_data_root(self, label: str) -> Path:
        return self.workdir / f"{label}_{next(self._runs)}"

    def run_pipelines(
        self,
        pipelines: tuple[str, ...],
        runtime_params: dict[str, Any],
        runner: ProjectRunner | None = None,
    ) -> float:
        """Seconds of ``session.run`` of the named pipelines."""
        with self.session(runtime_params) as session:
            start = time.perf_counter()
            session.run(pipeline_names=list(pipelines), runner=runner or ProjectRunner())
            return time.perf_counter() - start

    def run_stage(self, stage: Stage) -> StageRun:
        """Run ingestion + featurization on ``stage.raw`` with a fresh ``data_root``."""
        data_root = self.new_data_root(stage.label)
        params = self.runtime_params(stage.raw, data_root, stage.featurization)
        jobs_before = _spark_job_ids()
        with node_times() as nodes:
            seconds = self.run_pipelines(
                STAGE_PIPELINES, params, ProjectRunner(stage.spark_settings)
            )
        jobs = len(_spark_job_ids() - jobs_before)
        run = StageRun(seconds, dict(nodes), jobs, data_root)
        if not stage.keep:
            self.discard(run)
        return run

    def load(self, dataset: str, data_root: Path, raw: RawImages) -> Any:
        """A dataset of the catalog of a run that wrote to ``data_root``."""
        with self.session(self.runtime_params(raw, data_root)) as session:
            return session.load_context().catalog.load(dataset)

    def discard(self, run: StageRun | Path) -> None:
        """Delete a run's outputs (a data_root of the work directory)."""
        shutil.rmtree(run.data_root if isinstance(run, StageRun) else run, ignore_errors=True)
