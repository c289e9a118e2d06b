"""The featurization report: what a run read, accepted, rejected and featurized.

Counted from the image table and the feature store as ``fruits.spark.feature_store.publish``
sorts the files, and from the run's own commits (Delta's row metrics); reused from the last
report when the run changed no row.
"""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits.spark.feature_store import is_accepted, outcomes, rejection_reason

logger = logging.getLogger(__name__)


# The tables the report's counts are read from, and those counts.
_COUNTED_TABLES = ("images", "image_feature_store")
_COUNTS = ("image_files", "accepted", "rejected", "distinct_contents", "rejection_reasons")


def summarize(  # noqa: PLR0913, PLR0917 - the run's tables and their changes
    images: DataFrame,
    image_feature_store: DataFrame,
    backbone_fingerprint: str | None,
    image_table_changes: dict[str, Any],
    table_versions: dict[str, Any],
    previous_report: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What this run did: files read, accepted and rejected, contents new, reused and removed,
    and the Delta table versions it read and wrote.

    The store's changes come from the run's own commits (Delta's operation metrics):
    inserted rows are new contents, updated ones contents featurized again under a new
    backbone, deleted ones contents gone; the others were reused. The counts of files and
    contents are those of ``previous_report`` (the last run's) when this run started from
    the versions that run left and changed no row in them: no query at all.

    The files are counted as ``publish`` sorts them (under ``backbone_fingerprint``).

    Raises:
        RuntimeError: If accepted + rejected differs from the number of image files
            (an internal error: no file may be lost or counted twice).
    """
    counts = _counts_if_unchanged(previous_report, table_versions)
    if counts is None:
        counts = _counts(images, image_feature_store, backbone_fingerprint)
    else:
        logger.info("Featurization: tables unchanged since the last report, its counts reused.")
    files, accepted, rejected = counts["image_files"], counts["accepted"], counts["rejected"]
    distinct_contents = counts["distinct_contents"]
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
        "rejection_reasons": counts["rejection_reasons"],
        "tables": table_versions,
    }
    logger.info(
        "Featurization: %d image files (%d read, %d bytes), %d accepted, %d rejected; CNN ran "
        "on %d new contents, %d reused, %d removed.",
        files, image_table_changes["files_read"], image_table_changes["raw_bytes_read"],
        accepted, rejected, contents["new"], contents["reused"], contents["removed"],
    )  # fmt: skip
    return report


def _counts(
    images: DataFrame, image_feature_store: DataFrame, backbone_fingerprint: str | None
) -> dict[str, Any]:
    """Files, accepted, rejected (with the 20 most frequent reasons) and distinct contents.

    One query: the files joined with their contents' outcome once (as ``publish`` sorts
    them), grouped by reason. Counting the two views and the tables separately planned
    the join three times over, about 2 s of the driver on a re-run, beside the PCA's work.
    """
    reason = F.when(is_accepted(), F.lit(None)).otherwise(rejection_reason())
    groups = (
        outcomes(images, image_feature_store, backbone_fingerprint)
        .groupBy(reason.alias("reason"))
        .agg(
            F.count("*").alias("files"),
            # A content's files share its outcome: its reason's group holds all of them.
            F.countDistinct("content_hash").alias("contents"),
        )
        .collect()
    )
    reasons = {row["reason"]: row["files"] for row in groups if row["reason"] is not None}
    accepted = sum(row["files"] for row in groups if row["reason"] is None)
    files = sum(row["files"] for row in groups)
    image_files = images.count()  # from Delta's statistics: no job
    if files != image_files:
        raise RuntimeError(
            f"{image_files} image files but {files} sorted into accepted and rejected: please "
            "report."
        )
    most_frequent = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:20]
    return {
        "image_files": files,
        "accepted": accepted,
        "rejected": files - accepted,
        "distinct_contents": sum(row["contents"] for row in groups),
        "rejection_reasons": dict(most_frequent),
    }


def _counts_if_unchanged(
    previous_report: dict[str, Any] | None, table_versions: dict[str, Any]
) -> dict[str, Any] | None:
    """The last report's counts if this run read the versions that run left (no other writer
    since) and changed no row of them (no commit, or one recording sources only); else None."""
    if not previous_report or any(key not in previous_report for key in _COUNTS):
        return None
    for name in _COUNTED_TABLES:
        before, now = previous_report.get("tables", {}).get(name), table_versions[name]
        if not before:
            return None
        left = before["written"][-1] if before["written"] else before["read"]
        changed_rows = now["inserted"] + now["updated"] + now["deleted"]
        if left is None or now["read"] != left or changed_rows:
            return None
    return {key: previous_report[key] for key in _COUNTS}
