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

from fruits.pipelines.featurization.backbone import cached_backbone, embed_images


def featurize_images(
    images: DataFrame,
    backbone_weights: list[np.ndarray],
    input_size: int,
    batch_size: int,
    images_per_partition: int,
    intra_op_threads: int,
) -> DataFrame:
    """Compute the 1280-d MobileNetV2 feature vector of every image, in Spark.

    The weights are broadcast once from the driver; each Python worker builds the
    network with ``weights=None`` on first use and reuses it for all its tasks.

    Args:
        images: The ``images`` table (``path``, ``label``, ``split``, ``content``).
        backbone_weights: MobileNetV2 no-top weight arrays, loaded on the driver.
        input_size: Square model input side in pixels (images are resized to it).
        batch_size: Images per model call inside a worker.
        images_per_partition: Target Spark partition size; more partitions than
            cores are always used so every core works.
        intra_op_threads: TensorFlow threads per Python worker.

    Returns:
        ``path``, ``label``, ``split`` and ``features`` (array of 1280 floats).
    """
    spark_context = images.sparkSession.sparkContext
    broadcast_weights = spark_context.broadcast(backbone_weights)
    weights_token = uuid.uuid4().hex

    @pandas_udf(ArrayType(FloatType()))
    def mobilenet_v2_features(contents: Iterator[pd.Series]) -> Iterator[pd.Series]:
        model = cached_backbone(
            weights_token, lambda: broadcast_weights.value, input_size, intra_op_threads
        )
        for batch in contents:
            yield pd.Series(list(embed_images(batch, model, input_size, batch_size)))

    partitions = max(
        spark_context.defaultParallelism, math.ceil(images.count() / images_per_partition)
    )
    return images.repartition(partitions).select(
        "path", "label", "split", mobilenet_v2_features(F.col("content")).alias("features")
    )
