"""Nodes of the featurization pipeline."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import ArrayType, FloatType

from fruits.pipelines.featurization.backbone import (
    PortableBackbone,
    cached_embedder,
    embed_images,
    export_backbone,
)


def prepare_backbone(
    backbone_weights: list[np.ndarray], input_size: int, runtime: str
) -> PortableBackbone:
    """Turn the weights into what the workers run: a TFLite model or Keras weights.

    Done once, on the driver, so that no worker converts or downloads anything.

    Args:
        backbone_weights: MobileNetV2 no-top weight arrays.
        input_size: Square model input side in pixels (96..224 are MobileNetV2's sizes).
        runtime: ``tflite`` (fast path) or ``keras`` (reference).
    """
    return export_backbone(backbone_weights, input_size, runtime)


def featurize_images(
    images: DataFrame,
    backbone: PortableBackbone,
    batch_size: int,
    images_per_partition: int,
    threads_per_worker: int,
) -> DataFrame:
    """Compute the 1280-d MobileNetV2 feature vector of every image, in Spark.

    The backbone is broadcast once from the driver; each Python worker builds its
    interpreter or model on first use and reuses it for all its tasks.

    Args:
        images: The ``images`` table (``path``, ``label``, ``split``, ``content``).
        backbone: The exported backbone (weights included).
        batch_size: Images per model call inside a worker.
        images_per_partition: Target Spark partition size; there are always at least
            as many partitions as cores so every core works.
        threads_per_worker: Inference threads per Python worker.

    Returns:
        ``path``, ``label``, ``split`` and ``features`` (array of 1280 floats).
    """
    spark_context = images.sparkSession.sparkContext
    broadcast_backbone = spark_context.broadcast(backbone)
    token = uuid.uuid4().hex
    input_size = backbone.input_size

    @pandas_udf(ArrayType(FloatType()))
    def mobilenet_v2_features(contents: Iterator[pd.Series]) -> Iterator[pd.Series]:
        embedder = cached_embedder(token, lambda: broadcast_backbone.value, threads_per_worker)
        for batch in contents:
            yield pd.Series(list(embed_images(batch, embedder, input_size, batch_size)))

    partitions = max(
        spark_context.defaultParallelism, math.ceil(images.count() / images_per_partition)
    )
    return images.repartition(partitions).select(
        "path", "label", "split", mobilenet_v2_features(F.col("content")).alias("features")
    )
