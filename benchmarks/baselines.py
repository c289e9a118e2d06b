"""The rows that are not our pipeline, written by hand: what our stage is compared with.

- the interpreter ceiling: TFLite alone on ready inputs, the hardware's limit;
- (a) plain Keras in one process, as a notebook would do it;
- (b) the classic Spark template of the course: a pandas UDF rebuilding the Keras model
  from broadcast weights in every task, on a Spark session with Spark's defaults.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from benchmarks.images import RawImages
from benchmarks.machine import timed_noop_write
from fruits.vision.backbone import PortableBackbone, build_backbone
from fruits.vision.embedder import load_embedder
from fruits.vision.images import preprocess_image

# Plain Keras predicts in batches of 32, as Keras's own predict does by default.
KERAS_BATCH = 32


def interpreter_ceiling(
    backbone: PortableBackbone, threads: int, batch_size: int, seconds: float = 10.0
) -> float:
    """Images/s of the TFLite interpreter alone on ready inputs: the hardware limit."""
    embed = load_embedder(backbone, threads)
    size = backbone.input_size
    batch = np.random.default_rng(0).uniform(-1, 1, (batch_size, size, size, 3))
    batch = batch.astype(np.float32)
    embed(batch)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        embed(batch)
        done += batch_size
    return done / (time.perf_counter() - start)


def plain_keras(files: tuple[Path, ...], weights: list[np.ndarray], size: int) -> float:
    """(a) Single process, no Spark: read, decode, preprocess, Keras predict_on_batch."""
    model = build_backbone(weights, size)
    model.predict_on_batch(np.zeros((KERAS_BATCH, size, size, 3), np.float32))  # graph warm-up
    start = time.perf_counter()
    for first in range(0, len(files), KERAS_BATCH):
        batch = [preprocess_image(p.read_bytes(), size) for p in files[first : first + KERAS_BATCH]]
        model.predict_on_batch(np.stack(batch))
    return len(files) / (time.perf_counter() - start)


def spark_defaults_session(project_spark: Mapping[str, Any]) -> SparkSession:
    """local[*] Spark with Spark's defaults, as the classic template runs.

    The project's first session started this process's JVM, which hands conf/local's
    settings on to every later session as defaults: its SQL settings are unset here
    (Spark's own values again). Its JVM options (JIT) stay, as they would in any
    session of this process.
    """
    spark = (
        SparkSession.builder.master("local[*]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    for key in project_spark:
        if key.startswith("spark.sql.") and spark.conf.isModifiable(key):
            spark.conf.unset(key)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def classic_template(
    spark: SparkSession, raw: RawImages, load_args: Mapping[str, Any], weights: list, size: int
) -> float:
    """(b) The course template: model rebuilt from the broadcast weights in every task,
    Keras predict per Arrow batch, Spark's default partitioning and batch size.

    Reads the files the catalog's ``raw_images`` reads (same ``load_args``). Seconds.
    """
    from pyspark.sql.functions import col, pandas_udf  # noqa: PLC0415
    from pyspark.sql.types import ArrayType, FloatType  # noqa: PLC0415

    broadcast_weights = spark.sparkContext.broadcast(weights)

    @pandas_udf(ArrayType(FloatType()))
    def featurize_udf(content_series_iter: Iterator[pd.Series]) -> Iterator[pd.Series]:
        model = build_backbone(broadcast_weights.value, size)  # once per task
        for content_series in content_series_iter:
            inputs = np.stack([preprocess_image(c, size) for c in content_series])
            yield pd.Series(list(model.predict(inputs, verbose=0)))

    files = spark.read.format("binaryFile").options(**load_args).load(raw.path)
    elapsed = timed_noop_write(
        files.select("path", featurize_udf(col("content")).alias("features"))
    )
    broadcast_weights.destroy()
    return elapsed
