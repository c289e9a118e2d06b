"""The feature store: features by image content, kept from run to run.

Contents are identified by SHA-256: the same bytes under two paths are embedded once,
and an image's features are reused while the backbone's fingerprint (weights, input
size, runtime, preprocessing) is unchanged. The CNN runs on new contents only.
"""

from __future__ import annotations

import logging

from py4j.protocol import Py4JJavaError
from pyspark.errors.exceptions.captured import CapturedException
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

from fruits.params import FeaturizationParams
from fruits.spark import delta
from fruits.spark.embedding import featurize_images
from fruits.spark.frames import empty_rows, string_rows
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

    The store's commits record the image table's version they were derived from: under
    the same backbone, only the image rows changed since that version are read (from the
    image table's change data feed; also right after a run killed between the two
    tables' commits), and their keys compared with the two tables' key columns: the
    image bytes read and the CNN's work follow what is new. Without that record or that
    feed, the whole image table is compared with the store.

    Returns:
        The changes, keyed by ``content_hash``: upserts of new features (contents new, or
        cached under another backbone), deletes of contents gone.
    """
    images_version = delta.table_version(images)
    sources = {
        # The version itself (not a digest): where the next run's changes start from.
        "images": images_version._asdict() if images_version else delta.table_digest(images),
        "backbone": backbone.fingerprint,
    }

    spark = images.sparkSession

    def rows() -> DataFrame | delta.CountedChanges:
        if previous_image_feature_store is None:  # a first run: nothing to join or to count
            files = images.count()  # bounds the distinct contents; from Delta's statistics
            logger.info("Feature store: first run, CNN on the contents of %d image files.", files)
            distinct = images.select("content_hash", "content").dropDuplicates(["content_hash"])
            return delta.upserts(featurize_images(distinct, backbone, settings, max(files, 1)))
        since = _images_derived_from(previous_image_feature_store, backbone.fingerprint)
        # The same table (by its id: a data root moved or copied keeps it), at the same or a
        # later version; an earlier one (a table put back from a copy) is compared whole.
        if images_version and since and since.table_id == images_version.table_id:
            if since.version == images_version.version:  # the same rows: nothing to do
                return _counted_changes(None, string_rows(spark, "content_hash", []), 0, 0)
            if since.version < images_version.version:
                try:
                    return _changes_since(
                        images, previous_image_feature_store, since, images_version, backbone,
                        settings,
                    )  # fmt: skip
                except (CapturedException, Py4JJavaError) as error:
                    logger.warning(
                        "Feature store: the image table's changes since version %d cannot be "
                        "read (%s); the whole table is compared with the store instead.",
                        since.version, _first_line(error),
                    )  # fmt: skip
        return _changes_from_tables(images, previous_image_feature_store, backbone, settings)

    return delta.TableChanges(rows=rows, sources=sources)


def _first_line(error: Exception) -> str:
    """An error's first line: the Java exception's for an error raised in the JVM (whose
    Python message only names the call that failed)."""
    java_error = getattr(error, "java_exception", None)
    text = str(java_error.toString()) if java_error is not None else str(error)
    return (text.strip().splitlines() or [type(error).__name__])[0][:200]


def _images_derived_from(store: DataFrame, fingerprint: str) -> delta.TableVersion | None:
    """The image table's version the store's last commit was derived from, if that commit
    was made under this backbone (so every stored row is under it); else None."""
    store_version = delta.table_version(store)
    if store_version is None:
        return None
    last = delta.last_sources(store.sparkSession, store_version.location) or {}
    if last.get("backbone") != fingerprint or not isinstance(last.get("images"), dict):
        return None
    try:
        return delta.TableVersion(**last["images"])
    except TypeError:  # recorded by another release of this project
        return None


def _changes_since(  # noqa: PLR0913, PLR0917 - the two tables, their versions, the CNN
    images: DataFrame,
    previous: DataFrame,
    since: delta.TableVersion,
    now: delta.TableVersion,
    backbone: PortableBackbone,
    settings: FeaturizationParams,
) -> delta.CountedChanges:
    """The store's changes from the image rows changed after version ``since``: contents
    added, still among the images and not stored; contents removed, no longer among the
    images and stored. Their keys, as many as the changes, come to the driver in one query."""
    spark = images.sparkSession
    changed = delta.changes_between(spark, since, now)
    is_added = F.col("_change_type").isin("insert", "update_postimage")
    added = changed.where(is_added)
    # Each table read once: the changed contents, flagged with where they are now.
    touched = changed.groupBy("content_hash").agg(
        F.max(is_added).alias("added"), F.max(~is_added).alias("removed")
    )
    current = images.select("content_hash").distinct().withColumn("in_images", F.lit(True))
    stored = previous.select("content_hash", F.lit(True).alias("in_store"))
    placed = touched.join(current, "content_hash", "left").join(stored, "content_hash", "left")
    in_images, in_store = F.col("in_images").isNotNull(), F.col("in_store").isNotNull()
    is_new = F.col("added") & in_images & ~in_store
    is_gone = F.col("removed") & ~in_images & in_store
    keys = (
        placed.where(is_new | is_gone)
        .select("content_hash", F.when(is_new, delta.UPSERT).otherwise(delta.DELETE).alias("kind"))
        .collect()
    )
    new_keys = [row["content_hash"] for row in keys if row["kind"] == delta.UPSERT]
    gone_keys = [row["content_hash"] for row in keys if row["kind"] == delta.DELETE]
    logger.info(
        "Feature store: CNN on %d new image contents, %d removed (the image table's changes "
        "after version %d).",
        len(new_keys), len(gone_keys), since.version,
    )  # fmt: skip
    featurized = None
    if new_keys:
        new_contents = added.select("content_hash", "content").join(
            string_rows(spark, "content_hash", new_keys), "content_hash", "left_semi"
        )
        distinct_new = new_contents.dropDuplicates(["content_hash"])
        featurized = featurize_images(distinct_new, backbone, settings, len(new_keys))
    gone = string_rows(spark, "content_hash", gone_keys)
    # New contents are keys the store lacks (found so above).
    return _counted_changes(featurized, gone, len(new_keys), len(gone_keys))


def _changes_from_tables(
    images: DataFrame,
    previous: DataFrame,
    backbone: PortableBackbone,
    settings: FeaturizationParams,
) -> DataFrame | delta.CountedChanges:
    """The store's changes from the whole image table and the store."""
    contents = images.select("content_hash", "content")
    new, kept = _store_changes(images, previous, backbone.fingerprint)
    logger.info(
        "Feature store: CNN on %d new image contents, %d reused, %d removed, %d invalidated.",
        new, kept["reused"], kept["removed"], kept["invalidated"],
    )  # fmt: skip
    cached = previous.where(F.col("backbone") == backbone.fingerprint)
    new_contents = contents.join(cached.select("content_hash"), "content_hash", "left_anti")
    distinct_new = new_contents.dropDuplicates(["content_hash"])
    featurized = featurize_images(distinct_new, backbone, settings, new) if new else None
    gone = previous.select("content_hash").join(
        images.select("content_hash"), "content_hash", "left_anti"
    )
    counted = _counted_changes(featurized, gone, new, kept["removed"])
    if kept["invalidated"]:  # new contents may be stored under another backbone
        return counted.rows
    # Every stored row is under this backbone: new contents are new keys, and the
    # contents gone are the stored ones removed. Counted already: no query.
    return counted


def _counted_changes(
    featurized: DataFrame | None, gone: DataFrame, new: int, removed: int
) -> delta.CountedChanges:
    """Upserts of the ``new`` contents ``featurized`` (None: none) and deletes of the
    ``removed`` ones ``gone`` (their keys), counted as keys the store lacks and holds."""
    spark = gone.sparkSession
    upserted = delta.upserts(
        featurized if featurized is not None else empty_rows(spark, FEATURE_STORE_SCHEMA)
    )
    changes = upserted.unionByName(delta.deletes(gone, upserted))
    held = {delta.UPSERT: 0} if new else {}
    if removed:
        held[delta.DELETE] = removed
    return delta.CountedChanges(changes, held)


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
    images: DataFrame, image_feature_store: DataFrame, backbone_fingerprint: str | None = None
) -> tuple[DataFrame, DataFrame]:
    """One row per image file: its features, or its path in the rejected files. Views, not
    tables: the image table joined with the store, so each content's features live once.

    Every file of ``images`` lands in exactly one of the two. A file is accepted when its
    content has features under the backbone: the store's ``rejection`` is null exactly then
    (the CNN writes one or the other). Nothing is computed until a reader asks, and a
    reader of paths and labels only never reads the 1,280 floats. Given the tables of an
    earlier version (Delta time travel), the views are that run's features.

    Args:
        images: The image table.
        image_feature_store: The feature store, updated for ``images``.
        backbone_fingerprint: Features of this backbone only (a run's, to be sure); None:
            the store's rows as they are (after a run, all under the run's backbone).

    Returns:
        ``image_features`` (``path``, ``label``, ``split``, ``content_hash``, ``backbone``,
        ``features``) and ``rejected_images`` (``path``, ``label``, ``split``,
        ``content_hash``, ``backbone``, ``reason``).
    """
    sorted_files = outcomes(images, image_feature_store, backbone_fingerprint)
    accepted = sorted_files.where(is_accepted()).select(
        "path", "label", "split", "content_hash", "backbone", "features"
    )
    refused = sorted_files.where(~is_accepted()).select(
        "path",
        "label",
        "split",
        "content_hash",
        F.coalesce("backbone", F.lit(backbone_fingerprint)).alias("backbone"),
        rejection_reason().alias("reason"),
    )
    return accepted, refused


def is_accepted() -> Column:
    """The content has features under the backbone: exactly when the store's ``rejection``
    is null (the CNN writes one or the other)."""
    return F.col("backbone").isNotNull() & F.col("rejection").isNull()


def rejection_reason() -> Column:
    """Why a file is rejected (not in the store at all cannot happen after a run; if it did,
    the file still counts)."""
    return F.coalesce("rejection", F.lit("not featurized"))


def outcomes(
    images: DataFrame, image_feature_store: DataFrame, backbone_fingerprint: str | None
) -> DataFrame:
    """Each image file with its content's row of the store (under the backbone, if given):
    ``is_accepted`` tells the accepted, ``rejection_reason`` why the others are not."""
    store = image_feature_store
    if backbone_fingerprint is not None:
        store = store.where(F.col("backbone") == backbone_fingerprint)
    files = images.select("path", "label", "split", "content_hash")
    return files.join(
        store.select("content_hash", "backbone", "features", "rejection"), "content_hash", "left"
    )
