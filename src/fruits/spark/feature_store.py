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
from fruits.spark import delta
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
) -> delta.TableChanges:
    """The feature store's changes for the current images, the CNN run on new contents only.

    Contents are identified by SHA-256: the same bytes under two paths are embedded
    once, and an image's features are reused while the backbone's fingerprint
    (weights, input size, runtime, preprocessing) is unchanged. Contents no longer
    among the images are deleted, so the store holds exactly the current contents.
    Nothing is computed when the image table and the backbone are those the store was
    last derived from.

    Returns:
        The changes, keyed by ``content_hash``: upserts of new features (contents new, or
        cached under another backbone), deletes of contents gone.
    """
    sources = {"images": delta.table_digest(images), "backbone": backbone.fingerprint}

    def rows() -> DataFrame | delta.CountedChanges:
        contents = images.select("content_hash", "content")
        if previous_image_feature_store is None:  # a first run: nothing to join or to count
            files = images.count()  # bounds the distinct contents; from Delta's statistics
            logger.info("Feature store: first run, CNN on the contents of %d image files.", files)
            distinct = contents.dropDuplicates(["content_hash"])
            return delta.upserts(featurize_images(distinct, backbone, settings, max(files, 1)))
        new, kept = _store_changes(images, previous_image_feature_store, backbone.fingerprint)
        logger.info(
            "Feature store: CNN on %d new image contents, %d reused, %d removed, %d invalidated.",
            new, kept["reused"], kept["removed"], kept["invalidated"],
        )  # fmt: skip
        cached = previous_image_feature_store.where(F.col("backbone") == backbone.fingerprint)
        new_contents = contents.join(cached.select("content_hash"), "content_hash", "left_anti")
        distinct_new = new_contents.dropDuplicates(["content_hash"])
        featurized = delta.upserts(
            featurize_images(distinct_new, backbone, settings, new)
            if new
            else images.sparkSession.createDataFrame([], FEATURE_STORE_SCHEMA)
        )
        gone = previous_image_feature_store.select("content_hash").join(
            images.select("content_hash"), "content_hash", "left_anti"
        )
        changes = featurized.unionByName(delta.deletes(gone, featurized))
        if kept["invalidated"]:  # new contents may be stored under another backbone
            return changes
        # Every stored row is under this backbone: new contents are new keys, and the
        # contents gone are the stored ones removed. Counted already: no query.
        held = {delta.UPSERT: 0} if new else {}
        if kept["removed"]:
            held[delta.DELETE] = kept["removed"]
        return delta.CountedChanges(changes, held)

    return delta.TableChanges(rows=rows, sources=sources)


def _store_changes(
    images: DataFrame, previous: DataFrame, fingerprint: str
) -> tuple[int, dict[str, int]]:
    """New contents, and the reused, removed and invalidated ones, in one small query."""
    stored = previous.select(
        "content_hash",
        (F.col("backbone") == fingerprint).alias("cached"),
        F.lit(True).alias("stored"),
    )
    wanted = images.select("content_hash").distinct().withColumn("wanted", F.lit(True))
    counts = (
        wanted.join(stored, "content_hash", "full_outer")
        .agg(
            F.count("wanted").alias("distinct"),
            F.count_if(F.col("wanted") & F.col("cached")).alias("reused"),
            F.count("stored").alias("stored"),
            F.count_if(F.col("cached")).alias("cached"),
        )
        .first()
    )
    return counts["distinct"] - counts["reused"], {
        "reused": counts["reused"],
        "removed": counts["cached"] - counts["reused"],
        "invalidated": counts["stored"] - counts["cached"],
    }


def publish(
    images: DataFrame,
    image_feature_store: DataFrame,
    previous_image_features: DataFrame | None,
    previous_rejected_images: DataFrame | None,
    backbone: PortableBackbone,
) -> tuple[delta.TableChanges, delta.TableChanges]:
    """One row per image file: its features, or its path in the rejected table.

    Every file of ``images`` lands in exactly one of the two tables. Both are kept from
    run to run: their changes are the rows of files new, changed, re-featurized, gone or
    moved between the two; nothing is computed when the image table, the store and the
    backbone are those they were last derived from.

    Returns:
        The changes of ``image_features`` (rows: ``path``, ``label``, ``split``,
        ``content_hash``, ``backbone``, ``features``) and of ``rejected_images`` (``path``,
        ``label``, ``split``, ``content_hash``, ``backbone``, ``reason``), keyed by ``path``.
    """
    sources = {
        "images": delta.table_digest(images),
        "image_feature_store": delta.table_digest(image_feature_store),
        "backbone": backbone.fingerprint,
    }

    def store() -> DataFrame:
        return image_feature_store.where(F.col("backbone") == backbone.fingerprint)

    def outcome() -> DataFrame:
        # Which files are accepted is read from the store's `rejection` (null exactly when
        # the content has features): the 1,280 floats join the rows that change only.
        return images.select("path", "label", "split", "content_hash").join(
            store().select("content_hash", "backbone", "rejection"), "content_hash", "left"
        )

    def features() -> DataFrame:
        accepted = outcome().where(F.col("backbone").isNotNull() & F.col("rejection").isNull())
        return _changes(
            accepted.select("path", "label", "split", "content_hash", "backbone"),
            previous_image_features,
            store().select("content_hash", "features"),
        )

    def rejected() -> DataFrame:
        refused = outcome().where(F.col("backbone").isNull() | F.col("rejection").isNotNull())
        return _changes(
            refused.select(
                "path",
                "label",
                "split",
                "content_hash",
                F.lit(backbone.fingerprint).alias("backbone"),
                # Not in the store at all cannot happen; if it did, the file is still counted.
                F.coalesce("rejection", F.lit("not featurized")).alias("reason"),
            ),
            previous_rejected_images,
        )

    return (
        delta.TableChanges(rows=features, sources=sources),
        delta.TableChanges(rows=rejected, sources=sources),
    )


def _changes(
    current: DataFrame, previous: DataFrame | None, values: DataFrame | None = None
) -> DataFrame:
    """Rows of ``current`` not in ``previous`` (same path, bytes and backbone), and deletes of
    the paths of ``previous`` no longer in ``current``. Only keys are compared; ``values``
    (keyed by ``content_hash``), when given, complete the changed rows only."""

    def completed(rows: DataFrame) -> DataFrame:
        if values is None:
            return rows
        extra = [name for name in values.columns if name != "content_hash"]
        return rows.join(values, "content_hash").select(*rows.columns, *extra)

    if previous is None:
        return delta.upserts(completed(current))
    row_identity = ["path", "content_hash", "backbone"]
    new_rows = current.join(previous.select(*row_identity), row_identity, "left_anti")
    gone = previous.select("path").join(current.select("path"), "path", "left_anti")
    changed = delta.upserts(completed(new_rows))
    return changed.unionByName(delta.deletes(gone, changed))


def summarize(  # noqa: PLR0913, PLR0917 - the run's tables and their changes
    images: DataFrame,
    image_features: DataFrame,
    rejected_images: DataFrame,
    image_feature_store: DataFrame,
    image_table_changes: dict[str, Any],
    table_versions: dict[str, Any],
) -> dict[str, Any]:
    """What this run did: files read, accepted and rejected, contents new, reused and removed,
    and the Delta table versions it read and wrote.

    The store's changes come from the run's own commits (Delta's operation metrics):
    inserted rows are new contents, updated ones contents featurized again under a new
    backbone, deleted ones contents gone; the others were reused.

    Raises:
        RuntimeError: If accepted + rejected differs from the number of image files
            (an internal error: no file may be lost or counted twice).
    """
    # Counts of Delta tables come from their statistics; only the rejected (few) are grouped.
    files, accepted = images.count(), image_features.count()
    distinct_contents = image_feature_store.count()
    reason_counts = (
        rejected_images.groupBy("reason").count().orderBy(F.desc("count"), "reason").take(20)
    )
    rejected = rejected_images.count()
    if accepted + rejected != files:
        raise RuntimeError(
            f"{files} image files but {accepted} accepted + {rejected} rejected: please report."
        )
    store = table_versions["image_feature_store"]
    contents = {
        "new": store["inserted"],
        "reused": distinct_contents - store["inserted"] - store["updated"],
        "removed": store["deleted"],
        "invalidated": store["updated"],
    }
    report = {
        "image_files": files,
        **image_table_changes,
        "accepted": accepted,
        "rejected": rejected,
        "distinct_contents": distinct_contents,
        **{f"contents_{key}": value for key, value in contents.items()},
        "rejection_reasons": {row["reason"]: row["count"] for row in reason_counts},
        "tables": table_versions,
    }
    logger.info(
        "Featurization: %d image files (%d read, %d bytes), %d accepted, %d rejected; CNN ran "
        "on %d new contents, %d reused, %d removed.",
        files, image_table_changes["files_read"], image_table_changes["raw_bytes_read"],
        accepted, rejected, contents["new"], contents["reused"], contents["removed"],
    )  # fmt: skip
    return report
