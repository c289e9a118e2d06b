"""The timed rows of our stage: (c), its settings, scaling and input sizes.

Each is one ``session.run`` of the ingestion and featurization pipelines
(``benchmarks.project``) with one thing changed: a featurization parameter
(``runtime_params``), a Spark setting, the raw images. The timing is the seconds of the
stage's nodes as the project's NodeTimer hook logs them (``StageRun.seconds``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.images import RawImages
from benchmarks.project import Project, Stage, StageRun
from fruits.ml.pca import fit_pca
from fruits.params import ReductionParams

# Our stage with one setting changed (row name: featurization parameters changed).
TUNING_ROWS: dict[str, dict[str, Any]] = {
    "defaults (runtime tflite)": {},
    "runtime keras, batch_size 32": {"runtime": "keras", "batch_size": 32},
    "batch_size 8": {"batch_size": 8},
    "batch_size 32": {"batch_size": 32},
    "threads_per_worker 2": {"threads_per_worker": 2},
    "images_per_partition 256": {"images_per_partition": 256},
    "images_per_partition 1024": {"images_per_partition": 1024},
}
# Spark settings of conf/ compared with another value (row name: key, value).
SPARK_SETTING_ROWS: dict[str, tuple[str, str]] = {
    "spark.sql.files.openCostInBytes 4 MB (Spark's default)": (
        "spark.sql.files.openCostInBytes",
        str(4 * 2**20),
    ),
    "arrow.maxRecordsPerBatch 64": ("spark.sql.execution.arrow.maxRecordsPerBatch", "64"),
    "arrow.maxRecordsPerBatch 10000 (Spark's default)": (
        "spark.sql.execution.arrow.maxRecordsPerBatch",
        "10000",
    ),
}
TUNING_NAMES = (*TUNING_ROWS, *SPARK_SETTING_ROWS)
# The nodes whose NodeTimer seconds make the scaling spans (see scaling_spans).
FEATURE_STORE_NODE = "update_feature_store"
PUBLISH_NODE = "publish_features"


def warm_up(project: Project, raw: RawImages) -> None:
    """Run our stage once on one class folder: JVM code paths and Python workers started.

    Row (c) then measures the stage's steady rate; start-up costs are in row (d).
    """
    project.run_stage(Stage(raw, label="warm_up"))


def tuning_rows(
    project: Project, raw: RawImages, names: tuple[str, ...] = TUNING_NAMES
) -> list[dict[str, Any]]:
    """Our stage with one setting changed at a time: what justifies each default."""
    rows = []
    for name in names:
        key, value = SPARK_SETTING_ROWS.get(name, (None, None))
        stage = Stage(
            raw,
            featurization=TUNING_ROWS.get(name, {}),
            spark_settings={key: value} if key else {},
            label="tuning",
        )
        rate = raw.count / project.run_stage(stage).seconds
        rows.append({"setting": name, "images_per_s": rate})
        print(f"tuning {name:>28}: {rate:7.1f} images/s", flush=True)
    return rows


def scaling_spans(run: StageRun) -> dict[str, float]:
    """The spans of the scaling table, each containing the previous one (seconds).

    ``feature_store``: the node that runs the CNN and writes the store;
    ``featurization``: and the node that publishes the ``image_features`` view; ``stage``: and
    the ingestion node before them (``StageRun.seconds``).
    """
    feature_store = run.node(FEATURE_STORE_NODE)
    return {
        "feature_store": feature_store,
        "featurization": feature_store + run.node(PUBLISH_NODE),
        "stage": run.seconds,
    }


def pca_fit_seconds(
    project: Project, run: StageRun, raw: RawImages, reduction: ReductionParams
) -> tuple[float, int]:
    """Seconds of the project's PCA fit on a run's ``image_features``, and its k."""
    features = project.load("image_features", run.data_root, raw)
    start = time.perf_counter()
    _, report = fit_pca(features, reduction.standardize, reduction.variance_target, reduction.k)
    return time.perf_counter() - start, report["k"]


@dataclass
class Scaling:
    """Our stage on raw image sets of growing size, each run ``rounds`` times in turn.

    The sizes are run in turn (the cores' speed drifts within minutes: each size sees
    the same drift); the median of each is kept. The last round's outputs stay until
    the PCA has been fitted on them.
    """

    project: Project
    reduction: ReductionParams
    rounds: int

    def rows(self, sizes: list[RawImages]) -> list[dict[str, Any]]:
        runs: dict[int, list[StageRun]] = {raw.count: [] for raw in sizes}
        for round_ in range(self.rounds):
            for raw in sizes:
                run = self.project.run_stage(
                    Stage(raw, label=f"scaling_{raw.count}", keep=round_ == self.rounds - 1)
                )
                runs[raw.count].append(run)
                ms = [1000 * seconds / raw.count for seconds in scaling_spans(run).values()]
                print(
                    f"scaling round {round_ + 1} {raw.count:>6}: feature store {ms[0]:.2f}, "
                    f"featurization {ms[1]:.2f}, stage {ms[2]:.2f} ms/image", flush=True,
                )  # fmt: skip
        return [self._row(raw, runs[raw.count]) for raw in sizes]

    def _row(self, raw: RawImages, runs: list[StageRun]) -> dict[str, Any]:
        last = runs[-1]
        pca_s, k = pca_fit_seconds(self.project, last, raw, self.reduction)
        self.project.discard(last)
        print(f"scaling {raw.count:>6}: PCA fit {pca_s:.1f} s, k {k}", flush=True)
        row: dict[str, Any] = {"images": raw.count, "pca_fit_s": pca_s, "k": k, "jobs": last.jobs}
        spans = [scaling_spans(run) for run in runs]
        for span in spans[0]:
            row[f"{span}_s"] = float(np.median([s[span] for s in spans]))
            row[f"runs_{span}_s"] = [s[span] for s in spans]
        return row


def size_rows(project: Project, raw: RawImages, input_sizes: tuple[int, ...]) -> list:
    """Our stage at each input size, then the project's reduction and classification
    pipelines on its features: speed against the classifier's Test accuracy."""
    rows = []
    for input_size in input_sizes:
        stage = Stage(raw, {"input_size": input_size}, label=f"size_{input_size}", keep=True)
        run = project.run_stage(stage)
        project.run_pipelines(
            ("reduction", "classification"), project.runtime_params(raw, run.data_root)
        )
        accuracy = project.load("classification_metrics", run.data_root, raw)["accuracy"]
        project.discard(run)
        rate = raw.count / run.seconds
        rows.append({"input_size": input_size, "images_per_s": rate, "accuracy": accuracy})
        print(f"size {input_size}: {rate:.1f} images/s, accuracy {accuracy}", flush=True)
    return rows
