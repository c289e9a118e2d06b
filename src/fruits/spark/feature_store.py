"""The feature store: features by image content, kept from run to run.

Contents are identified by SHA-256: the same bytes under two paths are embedded once,
and an image's features are reused while the backbone's fingerprint (weights, input
size, runtime, preprocessing) is unchanged. The CNN runs on new contents only.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

from fruits.params import FeaturizationParams
from fruits.spark.embedding import featurize_images
from fruits.vision.backbone import PortableBackbone

logger = logging.getLogger(__name__)

# One row per distinct image content: its features, or why it has none.
FEATURE_STORE_SCHEMA = StructType(
    [
        StructField("content_hash", StringType()),
        StructField("backbone", StringType()),
        StructField("features", ArrayType(FloatType())),
        StructField("rejection", StringType()),
    ]
)


def update(
    images: DataFrame,
    previous_image_feature_store: DataFrame | None,
    backbone: PortableBackbone,
    settings: FeaturizationParams,
) -> tuple[DataFrame, dict[str, int]]:
    """The feature store for the current images, running the CNN on new contents only.

    Contents are identified by SHA-256: the same bytes under two paths are embedded
    once, and an image's features are reused while the backbone's fingerprint
    (weights, input size, runtime, preprocessing) is unchanged. Contents no longer
    among the images are dropped, so the store holds exactly the current contents.

    Returns:
        The new store (saved as a new snapshot) and what it kept from the previous
        one: ``reused`` (contents cached under this backbone), ``removed`` (gone from
        the raw images) and ``invalidated`` (cached under another backbone). Every
        other row of the store is new: ``summarize`` counts them in the
        saved store.
    """

    def _featurize(contents: DataFrame, count: int) -> DataFrame:
        return featurize_images(contents, backbone, settings, count)

    contents = images.select("content_hash", "content")
    if previous_image_feature_store is None:  # a first run: nothing to join or to count
        kept = {"reused": 0, "removed": 0, "invalidated": 0}
        # The image files bound the distinct contents; from Parquet, a footer count.
        files = images.count()
        logger.info("Feature store: first run, CNN on the contents of %d image files.", files)
        if files == 0:
            return images.sparkSession.createDataFrame([], FEATURE_STORE_SCHEMA), kept
        return _featurize(contents.dropDuplicates(["content_hash"]), files), kept
    new, kept = _store_changes(images, previous_image_feature_store, backbone.fingerprint)
    logger.info(
        "Feature store: CNN on %d new image contents, %d reused, %d removed, %d invalidated.",
        new, kept["reused"], kept["removed"], kept["invalidated"],
    )  # fmt: skip
    reused = previous_image_feature_store.where(F.col("backbone") == backbone.fingerprint).join(
        images.select("content_hash").distinct(), "content_hash", "left_semi"
    )
    if new == 0:
        return reused, kept
    new_contents = contents.join(reused.select("content_hash"), "content_hash", "left_anti")
    new_contents = new_contents.dropDuplicates(["content_hash"])
    return reused.unionByName(_featurize(new_contents, new)), kept


def _store_changes(
    images: DataFrame, previous: DataFrame, fingerprint: str
) -> tuple[int, dict[str, int]]:
    """New contents, and the reused, removed and invalidated ones, in two small jobs."""
    in_store = previous.agg(
        F.count("*").alias("stored"),
        F.count_if(F.col("backbone") == fingerprint).alias("cached"),
    ).first()
    cached_hashes = previous.where(F.col("backbone") == fingerprint).select(
        "content_hash", F.lit(True).alias("cached")
    )
    in_images = (
        images.select("content_hash")
        .distinct()
        .join(cached_hashes, "content_hash", "left")
        .agg(F.count("*").alias("distinct"), F.count("cached").alias("reused"))
        .first()
    )
    return in_images["distinct"] - in_images["reused"], {
        "reused": in_images["reused"],
        "removed": in_store["cached"] - in_images["reused"],
        "invalidated": in_store["stored"] - in_store["cached"],
    }


def publish(
    images: DataFrame, image_feature_store: DataFrame, backbone: PortableBackbone
) -> tuple[DataFrame, DataFrame]:
    """One row per image file: its features, or its path in the rejected table.

    Every file of ``images`` lands in exactly one of the two outputs.

    Returns:
        ``image_features`` (``path``, ``label``, ``split``, ``content_hash``,
        ``features``) and ``rejected_images`` (``path``, ``label``, ``split``,
        ``content_hash``, ``reason``).
    """
    store = image_feature_store.where(F.col("backbone") == backbone.fingerprint).select(
        "content_hash", "features", "rejection"
    )
    per_file = images.select("path", "label", "split", "content_hash").join(
        store, "content_hash", "left"
    )
    image_features = per_file.where(F.col("features").isNotNull()).select(
        "path", "label", "split", "content_hash", "features"
    )
    rejected_images = per_file.where(F.col("features").isNull()).select(
        "path",
        "label",
        "split",
        "content_hash",
        # Not in the store at all cannot happen; if it ever did, the file is still counted.
        F.coalesce("rejection", F.lit("not featurized")).alias("reason"),
    )
    return image_features, rejected_images


def summarize(
    images: DataFrame,
    image_features: DataFrame,
    rejected_images: DataFrame,
    image_feature_store: DataFrame,
    feature_store_changes: dict[str, int],
) -> dict[str, Any]:
    """What this run did: files accepted and rejected, contents new, reused and removed.

    The saved store holds each current content once: the ones not reused are new.

    Raises:
        RuntimeError: If accepted + rejected differs from the number of image files
            (an internal error: no file may be lost or counted twice).
    """
    # Counts of Parquet tables come from their footers; only the rejected (few) are grouped.
    files, accepted = images.count(), image_features.count()
    distinct_contents = image_feature_store.count()
    new = distinct_contents - feature_store_changes["reused"]
    reason_counts = (
        rejected_images.groupBy("reason").count().orderBy(F.desc("count"), "reason").take(20)
    )
    rejected = rejected_images.count()
    if accepted + rejected != files:
        raise RuntimeError(
            f"{files} image files but {accepted} accepted + {rejected} rejected: please report."
        )
    reasons = {row["reason"]: row["count"] for row in reason_counts}
    report = {
        "image_files": files,
        "accepted": accepted,
        "rejected": rejected,
        "distinct_contents": distinct_contents,
        "contents_new": new,
        **{f"contents_{key}": value for key, value in feature_store_changes.items()},
        "rejection_reasons": reasons,
    }
    logger.info(
        "Featurization: %d image files, %d accepted, %d rejected; CNN ran on %d new contents, "
        "%d reused, %d removed.",
        files, accepted, rejected, new, feature_store_changes["reused"],
        feature_store_changes["removed"],
    )  # fmt: skip
    return report
