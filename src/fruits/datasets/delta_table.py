"""A Delta Lake table a run updates with keyed changes (``MERGE``), read as its current version."""

from __future__ import annotations

import logging
from typing import Any

from kedro.io import AbstractDataset
from pyspark.sql import DataFrame, SparkSession

from fruits.datasets.filesystems import filesystem, spark_uri
from fruits.spark import delta, delta_log

logger = logging.getLogger(__name__)

# The layout of the snapshot store this table replaces: a pointer file naming a Parquet folder.
_SNAPSHOT_POINTER = "_CURRENT"


class DeltaMergeDataset(AbstractDataset[delta.TableChanges, DataFrame | None]):
    """A Delta table, updated in place: ``save`` takes changes, ``load`` gives the table.

    ``save`` takes a ``fruits.spark.delta.TableChanges``: the rows to change, one per
    ``key``, built only if the table's sources changed since its last commit, and merged in
    one commit (none when there is nothing to change); the first save creates the table.
    Delta's commit protocol makes each version whole: a run killed mid-merge leaves the
    previous version current, and the files it wrote are unreferenced until ``VACUUM``.
    After a commit, the ``maintenance`` policy may compact the table and remove old files
    (``fruits.spark.delta_log.Maintenance``); ``properties`` are the table's Delta properties
    (set at creation, or added before the next commit of rows). ``load`` returns the
    current version, or None before the first save.

    A folder holding the snapshot store this table replaced (``_CURRENT`` naming a Parquet
    snapshot) is migrated when first loaded (in a run, under its lock): the current snapshot
    becomes the table's first version and the snapshots are deleted, said in the log.

    Example catalog entry::

        images:
          type: fruits.datasets.DeltaMergeDataset
          filepath: s3a://bucket/data/02_intermediate/images
          key: [path]
          maintenance: {optimize_every: 20, vacuum_retention_hours: 168}
          properties: {delta.enableChangeDataFeed: "true"}
    """

    def __init__(  # noqa: PLR0913 - the catalog entry's keys
        self,
        *,
        filepath: str,
        key: list[str],
        maintenance: dict[str, Any] | None = None,
        properties: dict[str, str] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = spark_uri(filepath)
        self._key = list(key)
        self._maintenance = delta_log.Maintenance.from_config(maintenance)
        self._properties = {name: str(value) for name, value in (properties or {}).items()}
        self._fs_args = fs_args
        self.metadata = metadata

    @staticmethod
    def _spark() -> SparkSession:
        return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()

    def load(self) -> DataFrame | None:
        """The table's current version, or None before the first save."""
        spark = self._spark()
        self._migrate_snapshot_store()
        if not delta.is_table(spark, self._filepath):
            return None
        return spark.read.format("delta").load(self._filepath)

    def save(self, data: delta.TableChanges) -> None:
        """Merge the changes in one commit, then maintain the table as its policy says."""
        spark = self._spark()
        if delta.apply_changes(spark, self._filepath, data, self._key, self._properties):
            delta_log.maintain(spark, self._filepath, self._maintenance)

    def _migrate_snapshot_store(self) -> None:
        """Migrate the snapshot store this table replaces, if the folder holds one."""
        fs, root = filesystem(self._filepath, self._fs_args)
        fs.invalidate_cache(root)
        try:
            pointer = fs.cat_file(f"{root}/{_SNAPSHOT_POINTER}").decode().strip()
        except FileNotFoundError:
            return
        spark = self._spark()
        if not delta.is_table(spark, self._filepath):
            logger.warning(
                "%s holds the previous snapshot store: its snapshot %s becomes the Delta "
                "table's first version (kept features are not computed again).",
                self._filepath,
                pointer,
            )
            snapshot = spark.read.parquet(f"{self._filepath}/{pointer}")
            with delta.extra_commit_metadata(spark, {"migrated_from": pointer}):
                snapshot.write.format("delta").mode("overwrite").save(self._filepath)
        # The Delta table is committed: the snapshots can go (a crash here is resumed later).
        for entry in fs.ls(root, detail=False):
            if entry.rstrip("/").rsplit("/", 1)[-1].startswith("snapshot-"):
                fs.rm(entry, recursive=True)
        fs.rm(f"{root}/{_SNAPSHOT_POINTER}")  # last: until then, the next run resumes here

    def _exists(self) -> bool:
        return delta.is_table(self._spark(), self._filepath)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "key": self._key, "properties": self._properties}
