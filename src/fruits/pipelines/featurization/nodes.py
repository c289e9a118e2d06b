"""Nodes of the featurization pipeline: the backbone exported once, the CNN on new contents.

The work is in ``fruits.vision`` (the network) and ``fruits.spark`` (the CNN inside
Spark, the feature store); these functions only connect it to the catalog.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import DataFrame

from fruits.params import ClassificationParams, FeaturizationParams
from fruits.spark import feature_store, featurization_report, sampling
from fruits.spark.delta import TableChanges
from fruits.vision import backbone
from fruits.vision.backbone import BackboneWeights, Int8Calibration, PortableBackbone
from fruits.vision.images import usable_inputs


def prepare_backbone(
    backbone_weights: BackboneWeights,
    previous_exported_backbone: PortableBackbone | None,
    params: FeaturizationParams,
) -> PortableBackbone:
    """Turn the weights into what the workers run: a TFLite model or Keras weights.

    The last run's export is kept when nothing that decides the features changed (when
    the weights file is the same, without reading it); else a float32 export.
    """
    return backbone.prepare_backbone(
        backbone_weights,
        params.input_size,
        params.runtime,
        previous_exported_backbone,
        Int8Calibration(params.calibration_images) if params.precision == "int8" else None,
    )


def quantize_backbone(
    prepared_backbone: PortableBackbone,
    backbone_weights: BackboneWeights,
    images: DataFrame,
    params: FeaturizationParams,
    classification: ClassificationParams,
) -> PortableBackbone:
    """With ``precision: int8``, the backbone quantized, calibrated on images of the
    classifier's training split (read only then); otherwise the prepared one as it is."""
    if params.precision != "int8":
        return prepared_backbone

    def calibration() -> list[np.ndarray]:
        contents = sampling.calibration_contents(
            images, params.calibration_images, classification.train_split
        )
        return usable_inputs(contents, params.input_size)

    int8 = Int8Calibration(params.calibration_images, calibration)
    return backbone.quantize_backbone(prepared_backbone, backbone_weights, int8)


def update_feature_store(
    images: DataFrame,
    previous_image_feature_store: DataFrame | None,
    exported_backbone: PortableBackbone,
    params: FeaturizationParams,
) -> TableChanges:
    """The store's changes for the current images, the CNN run on contents not seen before."""
    return feature_store.update(images, previous_image_feature_store, exported_backbone, params)


def publish_features(
    images: DataFrame, image_feature_store: DataFrame, exported_backbone: PortableBackbone
) -> tuple[DataFrame, DataFrame]:
    """One row per image file: in ``image_features``, or in ``rejected_images`` with a reason
    (views of the image table and the store: nothing is written)."""
    return feature_store.publish(images, image_feature_store, exported_backbone.fingerprint)


def summarize_featurization(  # noqa: PLR0913, PLR0917 - the tables and their changes
    images: DataFrame,
    image_feature_store: DataFrame,
    exported_backbone: PortableBackbone,
    image_table_changes: dict[str, Any],
    table_versions: dict[str, Any],
    previous_featurization_report: dict[str, Any] | None,
) -> dict[str, Any]:
    """Files read, accepted and rejected (with reasons), contents new, reused and removed,
    and the table versions the run read and wrote (counts reused when no row changed)."""
    return featurization_report.summarize(
        images,
        image_feature_store,
        exported_backbone.fingerprint,
        image_table_changes,
        table_versions,
        previous_featurization_report,
    )
