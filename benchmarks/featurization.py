"""Featurization benchmark: plain Keras, the classic Spark template, our stage, `kedro run`.

Everything runs in one invocation, on the same images and cores, so that the ratios
hold even on a machine whose speed drifts (shared cloud cores do). Writes
``benchmarks/results.json`` and ``BENCHMARKS.md``.

    .venv/bin/python benchmarks/featurization.py            # the full benchmark (20-35 min)
    .venv/bin/python benchmarks/featurization.py --quick    # 1,000 images, no scaling/sizes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
# `kedro run` is timed this many times with each runner, alternating (start-up costs vary).
KEDRO_RUNS = 2
# Plain Keras predicts in batches of 32, as Keras's own predict does by default.
KERAS_BATCH = 32
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def image_files(roots: list[Path], limit: int | None = None) -> list[Path]:
    """Every image under the roots, sorted, optionally the first ``limit``."""
    files = sorted(
        p for root in roots for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    return files[:limit] if limit else files


def copy_subset(files: list[Path], roots: list[Path], target: Path) -> Path:
    """Copy files keeping their Split/Class/ layout, so that Spark reads exactly them."""
    for source in files:
        root = next(r for r in roots if source.is_relative_to(r))
        destination = target / source.relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    return target


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    import pyspark  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "pyspark": pyspark.__version__,
    }


def load_weights(weights: Path, sha256: str | None) -> list[np.ndarray]:
    from fruits.datasets import BackboneWeightsDataset  # noqa: PLC0415

    return BackboneWeightsDataset(source=str(weights), sha256=sha256).load()


def interpreter_ceiling(
    backbone: Any, threads: int, batch_size: int, seconds: float = 10.0
) -> float:
    """Images/s of the TFLite interpreter alone on ready inputs: the hardware limit."""
    from fruits.pipelines.featurization.backbone import load_embedder  # noqa: PLC0415

    embed = load_embedder(backbone, threads)
    size = backbone.input_size
    shape = (batch_size, size, size, 3)
    batch = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    embed(batch)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        embed(batch)
        done += batch_size
    return done / (time.perf_counter() - start)


def plain_keras(files: list[Path], weights: list[np.ndarray], size: int) -> float:
    """(a) Single process, no Spark: read, decode, preprocess, Keras predict_on_batch."""
    from fruits.pipelines.featurization.backbone import (  # noqa: PLC0415
        build_backbone,
        preprocess_image,
    )

    model = build_backbone(weights, size)
    model.predict_on_batch(np.zeros((KERAS_BATCH, size, size, 3), np.float32))  # graph warm-up
    start = time.perf_counter()
    for first in range(0, len(files), KERAS_BATCH):
        batch = [preprocess_image(p.read_bytes(), size) for p in files[first : first + KERAS_BATCH]]
        model.predict_on_batch(np.stack(batch))
    return len(files) / (time.perf_counter() - start)


def spark_session(project_settings: bool):
    """local[*] Spark: with the project's conf/local settings, or Spark's defaults."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    builder = SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false")
    builder = builder.config("spark.driver.memory", "4g")
    if project_settings:
        from kedro.config import OmegaConfigLoader  # noqa: PLC0415

        loader = OmegaConfigLoader(
            str(REPO / "conf"), base_env="base", default_run_env="local",
            config_patterns={"spark": ["spark*", "spark*/**"]},
        )  # fmt: skip
        for key, value in loader["spark"].items():
            builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_raw(spark, roots: list[Path]):
    return (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", True)
        .option("pathGlobFilter", "*.{[jJ][pP][gG],[jJ][pP][eE][gG],[pP][nN][gG]}")
        .load([str(r) for r in roots])
    )


def timed_noop_write(frame) -> float:
    """Seconds to compute every row (Spark's no-op sink: no output I/O)."""
    start = time.perf_counter()
    frame.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


def classic_template(spark, roots: list[Path], weights: list[np.ndarray], size: int) -> float:
    """(b) The course template: model rebuilt from the broadcast weights in every task,
    Keras predict per Arrow batch, Spark's default partitioning and batch size."""
    from pyspark.sql.functions import col, pandas_udf  # noqa: PLC0415
    from pyspark.sql.types import ArrayType, FloatType  # noqa: PLC0415

    from fruits.pipelines.featurization.backbone import (  # noqa: PLC0415
        build_backbone,
        preprocess_image,
    )

    broadcast_weights = spark.sparkContext.broadcast(weights)

    @pandas_udf(ArrayType(FloatType()))
    def featurize_udf(content_series_iter: Iterator[pd.Series]) -> Iterator[pd.Series]:
        model = build_backbone(broadcast_weights.value, size)  # once per task
        for content_series in content_series_iter:
            inputs = np.stack([preprocess_image(c, size) for c in content_series])
            yield pd.Series(list(model.predict(inputs, verbose=0)))

    frame = read_raw(spark, roots).select("path", featurize_udf(col("content")).alias("features"))
    elapsed = timed_noop_write(frame)
    broadcast_weights.destroy()
    return elapsed


def warm_up(spark, root: Path, backbone: Any, workdir: Path) -> None:
    """Run our stage once on a few images: JVM code paths and Python workers started.

    Row (c) then measures the stage's steady rate; start-up costs are in row (d).
    """
    few = next(p.parent for p in image_files([root]))
    our_stage(spark, [few], backbone, workdir / "warm_up")


def our_stage(spark, roots: list[Path], backbone: Any, output: Path, **overrides: int) -> float:
    """(c) The pipeline's ingestion and featurization nodes, from the raw files: seconds."""
    return sum(stage_seconds(spark, roots, backbone, output, **overrides))


def stage_seconds(
    spark, roots: list[Path], backbone: Any, output: Path, **overrides: int
) -> tuple[float, float, float]:
    """Our stage, as ``kedro run`` does it: seconds of its three steps.

    Ingestion writes ``images`` to Parquet; the feature store step reads it back, runs
    the CNN (no previous store: every image is new) and writes the store; publishing
    writes ``image_features`` to ``output/image_features.parquet``. ``overrides``
    replace the featurization parameters of conf/base (the defaults).
    """
    from fruits.pipelines.featurization.nodes import (  # noqa: PLC0415
        publish_features,
        update_feature_store,
    )
    from fruits.pipelines.ingestion.nodes import build_image_table  # noqa: PLC0415

    params = pipeline_parameters()
    settings = {
        key: params["featurization"][key]
        for key in ("batch_size", "images_per_partition", "threads_per_worker")
    } | overrides
    start = time.perf_counter()
    images_path = str(output / "images.parquet")
    images = build_image_table(read_raw(spark, roots), params["ingestion"]["split_folders"])
    images.write.mode("overwrite").parquet(images_path)
    ingested = time.perf_counter()
    images = spark.read.parquet(images_path)
    store, _ = update_feature_store(images, None, backbone, **settings)
    store_path = str(output / "image_feature_store.parquet")
    store.write.mode("overwrite").parquet(store_path)
    stored = time.perf_counter()
    image_features, _ = publish_features(images, spark.read.parquet(store_path), backbone)
    image_features.write.mode("overwrite").parquet(str(output / "image_features.parquet"))
    return ingested - start, stored - ingested, time.perf_counter() - stored


def tuning_rows(
    spark,
    roots: list[Path],
    weights: list[np.ndarray],
    backbone: Any,
    n: int,
    quick: bool,
    workdir: Path,
) -> list[dict[str, Any]]:
    """Our stage with one setting changed at a time: what justifies each default."""
    from fruits.pipelines.featurization.backbone import export_backbone  # noqa: PLC0415

    keras = export_backbone(weights, backbone.input_size, "keras")
    variants: list[tuple[str, Any, dict[str, int]]] = [
        ("defaults (runtime tflite)", backbone, {}),
        ("runtime keras, batch_size 32", keras, {"batch_size": 32}),
        ("batch_size 8", backbone, {"batch_size": 8}),
        ("batch_size 32", backbone, {"batch_size": 32}),
        ("threads_per_worker 2", backbone, {"threads_per_worker": 2}),
        ("images_per_partition 256", backbone, {"images_per_partition": 256}),
        ("images_per_partition 1024", backbone, {"images_per_partition": 1024}),
        *((name, backbone, {}) for name in SPARK_SETTING_ROWS),
    ]
    rows = []
    for name, variant_backbone, overrides in variants[:2] if quick else variants:
        key, value = SPARK_SETTING_ROWS.get(name, (None, None))
        if key:
            project_value = spark.conf.get(key)
            spark.conf.set(key, value)
        rate = n / our_stage(spark, roots, variant_backbone, workdir / "tuning", **overrides)
        if key:
            spark.conf.set(key, project_value)
        rows.append({"setting": name, "images_per_s": rate})
        print(f"tuning {name:>28}: {rate:7.1f} images/s", flush=True)
    return rows


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


def pipeline_parameters() -> dict[str, Any]:
    from kedro.config import OmegaConfigLoader  # noqa: PLC0415

    return OmegaConfigLoader(str(REPO / "conf"), base_env="base", default_run_env="local")[
        "parameters"
    ]


def pca_fit_seconds(spark, features_path: Path) -> tuple[float, int]:
    from fruits.pipelines.reduction.nodes import fit_pca  # noqa: PLC0415

    start = time.perf_counter()
    _, report = fit_pca(spark.read.parquet(str(features_path)), False, 0.90, None)
    return time.perf_counter() - start, report["k"]


class PeakTreeMemory:
    """Samples the summed RSS of a process and all its descendants (JVM, Python workers)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.peak_bytes = 0
        self._root = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                tree = [self._root, *self._root.children(recursive=True)]
                total = sum(p.memory_info().rss for p in tree if p.is_running())
                self.peak_bytes = max(self.peak_bytes, total)
            except psutil.Error:
                pass
            self._stop.wait(interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_bytes


def kedro_run(
    raw: Path,
    weights: Path,
    sha256: str | None,
    data_root: Path,
    runner: str | None = None,
    java_options: str | None = None,
) -> dict[str, Any]:
    """(d) `kedro run --env local` of ingestion, featurization and reduction, as a user runs
    it: Python and JVM start, weights, TFLite export, PCA and every write included.

    ``java_options`` replace conf/local's ``spark.driver.extraJavaOptions`` for this run.
    """
    params = f"raw_images_path={raw},data_root={data_root},weights_source={weights}"
    if sha256:
        params += f",weights_sha256={sha256}"
    command = [
        str(Path(sys.executable).parent / "kedro"),
        "run",
        "--env",
        "local",
        # What the issue times: features and PCA. Classification and plots are extra.
        "--pipelines",
        "ingestion,featurization,reduction",
        f"--params={params}",
        *(["--runner", runner] if runner else []),
    ]
    environment = os.environ.copy()
    if java_options is not None:
        # spark-submit applies its own arguments after the --conf the project passes.
        environment["PYSPARK_SUBMIT_ARGS"] = f'--driver-java-options "{java_options}" pyspark-shell'
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=REPO, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    memory = PeakTreeMemory(process.pid)
    _, stderr = process.communicate()
    elapsed = time.perf_counter() - start
    peak = memory.stop()
    if process.returncode != 0:
        sys.exit(f"kedro run failed:\n{stderr.decode(errors='replace')[-3000:]}")
    explained = json.loads((data_root / "08_reporting" / "explained_variance.json").read_text())
    return {"seconds": elapsed, "peak_rss_mb": peak / 2**20, "k": explained["k"]}


# (d)'s variants: the defaults, then one setting changed (runner, or the JVM's JIT).
KEDRO_RUN_VARIANTS: dict[str, dict[str, str]] = {
    "defaults (ThreadRunner, C1 JIT)": {},
    "--runner SequentialRunner": {"runner": "SequentialRunner"},
    "HotSpot's default JIT (C1 + C2)": {"java_options": "-XX:TieredStopAtLevel=4"},
}


def kedro_run_rows(
    args: argparse.Namespace, main_root: Path, workdir: Path
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """(d) with the defaults and each variant, alternately, KEDRO_RUNS times each: the
    defaults' mean seconds, runs, peak memory and k; every variant's runs."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in KEDRO_RUN_VARIANTS}
    for attempt in range(KEDRO_RUNS):
        for index, (name, done) in enumerate(runs.items()):
            data_root = workdir / f"kedro_run_{index}_{attempt}"
            settings = KEDRO_RUN_VARIANTS[name]
            done.append(kedro_run(main_root, args.weights, args.sha256, data_root, **settings))
            print(f"kedro run, {name}: {done[-1]['seconds']:.1f} s", flush=True)
    default = next(iter(runs.values()))
    row = {
        "seconds": float(np.mean([run["seconds"] for run in default])),
        "runs_s": [run["seconds"] for run in default],
        "peak_rss_mb": max(run["peak_rss_mb"] for run in default),
        "k": default[0]["k"],
    }
    return row, {name: [run["seconds"] for run in done] for name, done in runs.items()}


def size_accuracy(spark, features_path: Path) -> float:
    """Test-split top-1 accuracy of the project's PCA + classifier on these features."""
    from fruits.pipelines.classification.nodes import (  # noqa: PLC0415
        evaluate_classifier,
        train_classifier,
    )
    from fruits.pipelines.reduction.nodes import fit_pca, project_features  # noqa: PLC0415

    params = pipeline_parameters()
    reduction, classification = params["reduction"], params["classification"]
    features = spark.read.parquet(str(features_path)).cache()
    pca_model, _ = fit_pca(
        features, reduction["standardize"], reduction["variance_target"], reduction["k"]
    )
    reduced = project_features(features, pca_model).cache()
    classifier, tuning = train_classifier(
        reduced,
        classification["train_split"],
        classification["reg_params"],
        classification["elastic_net_param"],
        classification["max_iter"],
        classification["train_ratio"],
        classification["seed"],
    )
    metrics = evaluate_classifier(reduced, classifier, tuning, classification["test_split"])
    features.unpersist()
    reduced.unpersist()
    return metrics["accuracy"]


def markdown(results: dict[str, Any]) -> str:
    m, rows = results["machine"], results["rows"]
    keras_rate = rows["plain_keras"]["images_per_s"]
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{results['command']}` on {results['date']}.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, {m['os']}; Python "
        f"{m['python']}, TensorFlow {m['tensorflow']}, PySpark {m['pyspark']}. No GPU.",
        "",
        "Cloud cores here drift (the same code measured up to 2x apart within an hour): compare",
        "rows of one run, not runs. The interpreter ceiling row is measured in the same run.",
        "",
        f"## Featurization, {results['n_images']} images, {results['input_size']}x"
        f"{results['input_size']}",
        "",
        "| row | what | seconds | images/s | vs plain Keras |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for key, label in [
        ("ceiling", "TFLite interpreter alone, ready inputs, default batch size, all cores"),
        ("plain_keras", "(a) plain Keras, one process: decode + predict_on_batch (32)"),
        ("classic_template", "(b) classic Spark template: model per task, Keras predict"),
        ("our_stage", "(c) our stage: ingestion + featurization nodes in Spark, warm"),
        ("kedro_run", "(d) `kedro run --env local` ingestion+featurization+reduction, cold"),
    ]:
        row = rows[key]
        seconds = f"{row['seconds']:.1f}" if "seconds" in row else "-"
        lines.append(
            f"| {key} | {label} | {seconds} | {row['images_per_s']:.1f} | "
            f"{row['images_per_s'] / keras_rate:.2f}x |"
        )
    lines += [
        "",
        f"Backbone export (Keras to TFLite, on the driver, once per run): "
        f"{results['backbone_export_s']:.1f} s.",
        f"`kedro run` peak memory (JVM + driver + Python workers, summed RSS): "
        f"{rows['kedro_run']['peak_rss_mb']:.0f} MB; chosen k = {rows['kedro_run']['k']}.",
        "",
        "Rows (a) and (c) are each the mean of two runs, measured alternately (a, c, a, c):",
        "(a) "
        + ", ".join(f"{r:.1f}" for r in rows["plain_keras"]["runs_images_per_s"])
        + " images/s; (c) "
        + ", ".join(f"{r:.1f}" for r in rows["our_stage"]["runs_images_per_s"])
        + " images/s.",
        "Row (c) runs after a warm-up on one class folder (JVM code paths and Python workers",
        "started): the stage's steady rate, `images` and `image_features` written to Parquet",
        "as in the pipeline. Row (d) is a new process from start to exit (Python, JVM,",
        "weights, TFLite export, every write, PCA), the mean of "
        f"{len(rows['kedro_run']['runs_s'])} runs with the defaults.",
        "",
        "`kedro run` with one setting changed (runs alternated with the defaults'):",
        "",
        "| kedro run | runs, s | mean s |",
        "| --- | --- | ---: |",
    ]
    for name, runs in results["kedro_run_variants_s"].items():
        listed = ", ".join(f"{s:.1f}" for s in runs)
        lines.append(f"| {name} | {listed} | {np.mean(runs):.1f} |")
    if results.get("tuning"):
        lines += [
            "",
            "## Settings: our stage with one parameter changed at a time",
            "",
            "| setting | images/s | vs defaults |",
            "| --- | ---: | ---: |",
        ]
        base = results["tuning"][0]["images_per_s"]
        for row in results["tuning"]:
            lines.append(
                f"| {row['setting']} | {row['images_per_s']:.1f} | "
                f"{row['images_per_s'] / base:.2f}x |"
            )
    if results.get("scaling"):
        lines += scaling_markdown(results["scaling"], results.get("job_latency_ms"))
    if results.get("sizes"):
        lines += [
            "",
            "## Input size: speed against accuracy (our stage; classifier trained on Training, "
            "scored on Test)",
            "",
            "| input size | images/s | Test top-1 accuracy |",
            "| ---: | ---: | ---: |",
        ]
        for row in results["sizes"]:
            lines.append(
                f"| {row['input_size']} | {row['images_per_s']:.1f} | {row['accuracy']:.2%} |"
            )
    lines += ["", EMR_SIZING.format(**results["emr"]), ""]
    return "\n".join(lines)


SCALING_SPANS = {
    "feature_store": "feature store (CNN job, store written)",
    "featurization": "featurization (+ `image_features` published)",
    "stage": "stage (+ ingestion from the raw files, row (c))",
}


def scaling_markdown(
    scaling: list[dict[str, Any]], job_latency: dict[str, float] | None
) -> list[str]:
    """The scaling table: ms per image of each size, against the largest size's."""
    largest = scaling[-1]
    lines = [
        "",
        "## Scaling: cost per image as the work grows",
        "",
        "Three spans of our stage, each containing the previous one: "
        + "; ".join(SCALING_SPANS.values())
        + f". Each size is run {len(largest['runs_stage_s'])} times, the sizes in turn "
        "(1,000, 4,750, ~20,000, 1,000, ...); medians. \"vs largest\": ms per image against "
        "the largest run's.",
        "",
        "| images | "
        + " | ".join(f"{span.replace('_', ' ')} ms/image | vs largest" for span in SCALING_SPANS)
        + " | Spark jobs | PCA fit s | k |",
        "| ---: " * (3 + 2 * len(SCALING_SPANS)) + "| ---: |",
    ]  # fmt: skip
    for row in scaling:
        cells = [str(row["images"])]
        for span in SCALING_SPANS:
            ms = 1000 * row[f"{span}_s"] / row["images"]
            largest_ms = 1000 * largest[f"{span}_s"] / largest["images"]
            cells += [f"{ms:.2f}", f"{ms / largest_ms - 1:+.0%}"]
        cells += [str(row.get("jobs", "")), f"{row['pca_fit_s']:.1f}", str(row["k"])]
        lines.append("| " + " | ".join(cells) + " |")
    # seconds = fixed + n x per-image, fitted through the rows: what a run costs
    # before its first image (job planning, shuffles, Parquet commits).
    n = [row["images"] for row in scaling]
    lines += ["", "A line through the rows (seconds = fixed + n x per image):", ""]
    for span in SCALING_SPANS:
        per_image, fixed = np.polyfit(n, [row[f"{span}_s"] for row in scaling], 1)
        lines.append(f"- {span}: {fixed:.2f} s + {1000 * per_image:.2f} ms per image")
    if job_latency:
        lines += [
            "",
            "Where the fixed part comes from: each run of the stage is about a dozen Spark "
            'jobs ("Spark jobs": Parquet writes, the CNN\'s among them, schema reads, a count, '
            "shuffles, broadcasts for joins), and on these cores a job that does nothing takes "
            f"{job_latency['jvm']:.0f} ms ({job_latency['python']:.0f} ms through a Python "
            f"worker, {job_latency['shuffle']:.0f} ms with a shuffle; medians).",
        ]
    lines += ["", "Runs, seconds (feature store; featurization; stage):", ""]
    for row in scaling:
        lines.append(
            f"- {row['images']}: "
            + "; ".join(
                ", ".join(f"{s:.2f}" for s in row[f"runs_{span}_s"]) for span in SCALING_SPANS
            )
        )
    return lines


EMR_SIZING = """## EMR sizing, from the measured per-core throughput

Assumptions: an m5.xlarge has 4 vCPUs = 2 physical cores (hyper-threads), like the 2 cores measured
here, so one node runs about {per_node:.0f} images/s = {per_hour:,.0f} images/hour (our stage's
per-core rate x 2; real EMR cores are usually faster than these shared ones: conservative).
Price (eu-west-3, on demand, check the current AWS price list): $0.224/h EC2 + $0.048/h EMR per
m5.xlarge. A cluster of 1 primary + N core nodes; ~12 minutes of provisioning and bootstrap per
cluster are not included.

| core nodes | images/hour | hours per million images | cost per million images |
| ---: | ---: | ---: | ---: |
{table}"""


def emr_sizing(stage_rate: float, cores: int) -> dict[str, Any]:
    per_node = stage_rate / cores * 2
    per_hour = per_node * 3600
    rows = []
    for nodes in (2, 4, 8, 16):
        hours = 1e6 / (per_hour * nodes)
        cost = hours * (nodes + 1) * (0.224 + 0.048)
        rows.append(f"| {nodes} | {per_hour * nodes:,.0f} | {hours:.2f} | ${cost:.2f} |")
    return {"per_node": per_node, "per_hour": per_hour, "table": "\n".join(rows)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, default=SHARED / "data" / "fruits-360")
    parser.add_argument("--more-images", type=Path, default=SHARED / "data" / "fruits-360-bench")
    parser.add_argument(
        "--weights", type=Path,
        default=SHARED / "models" / "mobilenet_v2_1.0_224_no_top.reconstructed.h5",
    )  # fmt: skip
    parser.add_argument(
        "--sha256", default="71e4c4ec4aa24c9c951b9265d6de42e1336dcf614c2214fa6a989208615e232c"
    )
    parser.add_argument("--quick", action="store_true", help="1,000 images; no scaling or sizes")
    parser.add_argument("--sizes", default="224,160,128,96", help="input sizes to compare")
    parser.add_argument("--output", type=Path, default=REPO)
    return parser.parse_args()


def spark_job_latency(spark, repeats: int = 7) -> dict[str, float]:
    """Milliseconds of Spark jobs that do (almost) nothing: the floor under every job.

    Medians over ``repeats`` of three jobs on a cached two-partition table: JVM only;
    through a Python worker (mapInArrow, like the CNN); after a shuffle.
    """
    table = spark.range(0, 1000, 1, 2).cache()
    table.count()

    def same_batches(batches: Iterator[Any]) -> Iterator[Any]:
        yield from batches

    jobs = {
        "jvm": table.selectExpr("id + 1 AS id"),
        "python": table.mapInArrow(same_batches, table.schema),
        "shuffle": table.repartition(2),
    }
    latency = {}
    for name, frame in jobs.items():
        timed_noop_write(frame)  # warm
        latency[name] = 1000 * float(np.median([timed_noop_write(frame) for _ in range(repeats)]))
    table.unpersist()
    return latency


def stage_job_count(spark, run: Callable[[], Any]) -> tuple[Any, int]:
    """``run()``'s result, and how many Spark jobs it ran."""
    group = f"bench-{time.monotonic_ns()}"
    spark.sparkContext.setJobGroup(group, "benchmark")
    try:
        result = run()
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    return result, len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def scaling_rows(spark, args: argparse.Namespace, backbone: Any, workdir: Path) -> list[dict]:
    """Our stage on 1,000, all of --images, and --images + --more-images; PCA fit on each.

    The sizes are run in turn, SCALING_ROUNDS times (the cores' speed drifts within
    minutes: each size sees the same drift), and the median of each is kept.
    """
    subset = copy_subset(image_files([args.images], 1000), [args.images], workdir / "n1000")
    sizes = [[subset], [args.images], [args.images, args.more_images]]
    runs: dict[int, list[tuple[float, float, float]]] = {}
    job_counts: dict[int, int] = {}
    for round_ in range(SCALING_ROUNDS):
        for roots in sizes:
            n = len(image_files(roots))
            stage = partial(stage_seconds, spark, roots, backbone, workdir / f"stage_{n}")
            steps, jobs = stage_job_count(spark, stage)
            runs.setdefault(n, []).append(steps)
            job_counts[n] = jobs
            ms = [1000 * cumulative / n for cumulative in scaling_spans(steps).values()]
            print(
                f"scaling round {round_ + 1} {n:>6}: feature store {ms[0]:.2f}, featurization "
                f"{ms[1]:.2f}, stage {ms[2]:.2f} ms/image", flush=True,
            )  # fmt: skip
    rows = []
    for n, timings in runs.items():
        pca_s, k = pca_fit_seconds(spark, workdir / f"stage_{n}" / "image_features.parquet")
        spans = [scaling_spans(steps) for steps in timings]
        row: dict[str, Any] = {"images": n, "pca_fit_s": pca_s, "k": k, "jobs": job_counts[n]}
        for span in spans[0]:
            row[f"{span}_s"] = float(np.median([s[span] for s in spans]))
            row[f"runs_{span}_s"] = [s[span] for s in spans]
        rows.append(row)
        print(f"scaling {n:>6}: PCA fit {pca_s:.1f} s, k {k}")
    return rows


def scaling_spans(steps: tuple[float, float, float]) -> dict[str, float]:
    """The spans of the scaling table, from (ingestion, feature store, publish) seconds."""
    ingestion, feature_store, publish = steps
    return {
        "feature_store": feature_store,
        "featurization": feature_store + publish,
        "stage": ingestion + feature_store + publish,
    }


# Rounds of the scaling rows (each round runs every size once).
SCALING_ROUNDS = 3


def size_rows(spark, args: argparse.Namespace, weights: list[np.ndarray], workdir: Path) -> list:
    """Our stage and the classifier's test accuracy at each input size."""
    from fruits.pipelines.featurization.backbone import export_backbone  # noqa: PLC0415

    n = len(image_files([args.images]))
    rows = []
    for input_size in [int(size) for size in args.sizes.split(",")]:
        sized = export_backbone(weights, input_size, "tflite")
        output = workdir / f"stage_size_{input_size}"
        seconds = our_stage(spark, [args.images], sized, output)
        accuracy = size_accuracy(spark, output / "image_features.parquet")
        rows.append({"input_size": input_size, "images_per_s": n / seconds, "accuracy": accuracy})
        print(f"size {input_size}: {n / seconds:.1f} images/s, accuracy {accuracy}")
    return rows


def main() -> None:
    args = parse_args()
    from fruits.pipelines.featurization.backbone import export_backbone  # noqa: PLC0415

    workdir = Path(tempfile.mkdtemp(prefix="fruits-bench-"))
    files = image_files([args.images], 1000 if args.quick else None)
    main_root = copy_subset(files, [args.images], workdir / "images") if args.quick else args.images
    size = pipeline_parameters()["featurization"]["input_size"]
    weights = load_weights(args.weights, args.sha256)
    start = time.perf_counter()
    backbone = export_backbone(weights, size, "tflite")
    cores = os.cpu_count() or 1
    results: dict[str, Any] = {
        "command": "make benchmark" + (" ARGS=--quick" if args.quick else ""),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "n_images": len(files),
        "input_size": size,
        "backbone_export_s": time.perf_counter() - start,
        "rows": {},
    }
    rows = results["rows"]

    def row(name: str, seconds: float | None, rate: float | None = None) -> None:
        rate = rate if rate is not None else len(files) / seconds
        rows[name] = {"images_per_s": rate} | ({"seconds": seconds} if seconds else {})
        print(f"{name:>18}: {rate:7.1f} images/s", flush=True)

    defaults = pipeline_parameters()["featurization"]
    ceiling = interpreter_ceiling(backbone, threads=cores, batch_size=defaults["batch_size"])
    row("ceiling", None, ceiling)
    keras_rates = [plain_keras(files, weights, size)]
    spark = spark_session(project_settings=False)
    row("classic_template", classic_template(spark, [main_root], weights, size))
    spark.stop()
    # No Spark session of ours alive while `kedro run` starts its own.
    kedro_row, results["kedro_run_variants_s"] = kedro_run_rows(args, main_root, workdir)
    row("kedro_run", kedro_row["seconds"])
    rows["kedro_run"] |= kedro_row
    spark = spark_session(project_settings=True)
    warm_up(spark, main_root, backbone, workdir)
    # The cores' speed drifts: (a) and (c) are measured twice, alternately, and averaged.
    stage_seconds = [our_stage(spark, [main_root], backbone, workdir / "stage")]
    keras_rates.append(plain_keras(files, weights, size))
    stage_seconds.append(our_stage(spark, [main_root], backbone, workdir / "stage"))
    row("plain_keras", len(files) / float(np.mean(keras_rates)))
    rows["plain_keras"]["runs_images_per_s"] = keras_rates
    row("our_stage", float(np.mean(stage_seconds)))
    rows["our_stage"]["runs_images_per_s"] = [len(files) / s for s in stage_seconds]
    results["tuning"] = tuning_rows(
        spark, [main_root], weights, backbone, len(files), args.quick, workdir
    )
    if not args.quick:
        results["job_latency_ms"] = spark_job_latency(spark)
        print("empty Spark jobs, ms:", results["job_latency_ms"], flush=True)
        results["scaling"] = scaling_rows(spark, args, backbone, workdir)
        results["sizes"] = size_rows(spark, args, weights, workdir)
    spark.stop()

    results["emr"] = emr_sizing(rows["our_stage"]["images_per_s"], cores)
    (args.output / "benchmarks").mkdir(parents=True, exist_ok=True)
    (args.output / "benchmarks" / "results.json").write_text(json.dumps(results, indent=2))
    (args.output / "BENCHMARKS.md").write_text(markdown(results))
    shutil.rmtree(workdir, ignore_errors=True)
    print(markdown(results))


if __name__ == "__main__":
    main()
