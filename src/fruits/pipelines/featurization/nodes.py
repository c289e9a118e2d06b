"""Nodes of the featurization pipeline: the backbone exported once, the CNN on new contents.

The work is in ``fruits.vision`` (the network) and ``fruits.spark`` (the CNN inside
Spark, the feature store); these functions only connect it to the catalog.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import DataFrame

from fruits.params import FeaturizationParams
from fruits.spark import feature_store
from fruits.vision.backbone import PortableBackbone, export_backbone


def prepare_backbone(
    backbone_weights: list[np.ndarray],
    previous_exported_backbone: PortableBackbone | None,
    params: FeaturizationParams,
) -> PortableBackbone:
    """Turn the weights into what the workers run: a TFLite model or Keras weights.

    The last run's export is kept when nothing that decides the features changed.
    """
    return export_backbone(
        backbone_weights, params.input_size, params.runtime, previous_exported_backbone
    )


def update_feature_store(
    images: DataFrame,
    previous_image_feature_store: DataFrame | None,
    exported_backbone: PortableBackbone,
    params: FeaturizationParams,
) -> tuple[DataFrame, dict[str, int]]:
    """The store for the current images, the CNN run on contents not seen before.

    Returns:
        The new store (saved as a new snapshot) and its ``reused``, ``removed`` and
        ``invalidated`` counts against the previous one.
    """
    return feature_store.update(images, previous_image_feature_store, exported_backbone, params)


def publish_features(
    images: DataFrame, image_feature_store: DataFrame, exported_backbone: PortableBackbone
) -> tuple[DataFrame, DataFrame]:
    """One row per image file: ``image_features``, or ``rejected_images`` with a reason."""
    return feature_store.publish(images, image_feature_store, exported_backbone)


def summarize_featurization(
    images: DataFrame,
    image_features: DataFrame,
    rejected_images: DataFrame,
    image_feature_store: DataFrame,
    feature_store_changes: dict[str, int],
) -> dict[str, Any]:
    """Files accepted and rejected (with reasons), contents new, reused and removed."""
    return feature_store.summarize(
        images, image_features, rejected_images, image_feature_store, feature_store_changes
    )
