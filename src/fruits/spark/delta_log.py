"""A Delta table's log read back: what a run committed, and when the table is maintained.

The commits' ``userMetadata`` name the run that made them (``fruits.spark.delta``); the
history gives the versions a run read and wrote and Delta's row metrics of its commits
(the featurization report's ``tables``), and how many commits were made since the last
compaction (the maintenance policy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from fruits.spark.delta import commit_metadata, current_version, is_table, latest_first

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Maintenance:
    """When a table is compacted and its unreferenced files removed.

    Args:
        optimize_every: ``OPTIMIZE`` (compaction of small files) once this many commits
            were made since the last one; 0 never.
        vacuum_retention_hours: ``VACUUM`` after each ``OPTIMIZE``, removing files no
            version of the last this-many hours needs: the window in which an earlier run's
            features can still be reloaded (time travel). Delta refuses less than 168 h
            unless its retention check is turned off: a reader of an older version would
            lose its files.
    """

    optimize_every: int = 20
    vacuum_retention_hours: int = 168

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Maintenance:
        """From a catalog entry's ``maintenance`` mapping (missing keys: the defaults)."""
        return cls(**(config or {}))


def maintain(spark: SparkSession, path: str, policy: Maintenance) -> None:
    """Compact and vacuum the table when ``policy`` says it is time, after a commit."""
    if policy.optimize_every <= 0:
        return
    # Fewer commits in all than the policy counts: no need to read the history (a Spark
    # job and ~0.3 s per commit of a re-run).
    version = current_version(spark, path)
    if version is not None and version + 1 < policy.optimize_every:
        return
    table = DeltaTable.forPath(spark, path)
    # VACUUM logs two commits of its own: they are maintenance, not changes.
    recent = latest_first(table.history(policy.optimize_every + 3))
    changes = 0
    for row in recent:
        if row["operation"] == "OPTIMIZE":
            break
        changes += not row["operation"].startswith("VACUUM")
    if changes < policy.optimize_every:
        return
    hours = policy.vacuum_retention_hours
    logger.info("Delta table %s: OPTIMIZE, then VACUUM of files older than %d h.", path, hours)
    table.optimize().executeCompaction()
    table.vacuum(hours)


# Delta's operation metrics: the rows a commit inserted, updated and deleted.
_ROW_METRICS = {
    "MERGE": {
        "inserted": "numTargetRowsInserted",
        "updated": "numTargetRowsUpdated",
        "deleted": "numTargetRowsDeleted",
    },
    "WRITE": {"inserted": "numOutputRows"},
}


def run_commits(spark: SparkSession, path: str, run: str | None, depth: int = 10) -> dict[str, Any]:
    """What run ``run`` did to the table at ``path``, from the table's history.

    Returns:
        ``read`` (the version the run started from: the one before its first commit, or
        the current one if it made none), ``written`` (the versions it committed) and the
        rows it ``inserted``, ``updated`` and ``deleted`` (Delta's operation metrics).
    """
    done = {"read": None, "written": [], "inserted": 0, "updated": 0, "deleted": 0}
    if not is_table(spark, path):
        return done
    rows = latest_first(DeltaTable.forPath(spark, path).history(depth))[::-1]
    ours = [row for row in rows if run is not None and commit_metadata(row).get("run") == run]
    done["written"] = [row["version"] for row in ours]
    first = ours[0]["version"] if ours else None
    done["read"] = rows[-1]["version"] if first is None else (first - 1 if first > 0 else None)
    for row in ours:
        if "migrated_from" in commit_metadata(row):
            continue  # rows brought over from the earlier store, not this run's work
        metrics = row["operationMetrics"] or {}
        for name, metric in _ROW_METRICS.get(row["operation"], {}).items():
            done[name] += int(metrics.get(metric, 0))
    return done
