"""The Delta table versions a run read and wrote, from the tables' own history."""

from __future__ import annotations

import json
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from pyspark.sql import SparkSession

from fruits.datasets.filesystems import spark_uri
from fruits.spark import delta, delta_log


class DeltaVersionsDataset(AbstractDataset[None, dict[str, Any]]):
    """Per table: its path, the version this run read, and the versions it committed.

    The run's commits are those carrying its identity in Delta's ``userMetadata`` (set
    on the Spark session when the run starts, ``fruits.hooks.DeltaRunIdentity``): exact
    even when a run stopped half-way, or when maintenance (``OPTIMIZE``) added commits.
    Load it after the tables were saved. Read-only.

    Example catalog entry::

        table_versions:
          type: fruits.datasets.DeltaVersionsDataset
          tables:
            images: data/02_intermediate/images
    """

    def __init__(self, *, tables: dict[str, str], metadata: dict[str, Any] | None = None) -> None:
        self._tables = {name: spark_uri(path) for name, path in tables.items()}
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        """Per table: ``path``, ``run``, and what the run did
        (``fruits.spark.delta_log.run_commits``: ``read``, ``written``, rows ``inserted``,
        ``updated``, ``deleted``)."""
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        run = json.loads(spark.conf.get(delta.RUN_METADATA_KEY, None) or "{}").get("run")
        return {
            name: {"path": path, **delta_log.run_commits(spark, path, run), "run": run}
            for name, path in self._tables.items()
        }

    def save(self, data: None) -> None:
        """Refuse: the versions are the tables' own."""
        raise DatasetError("DeltaVersionsDataset is read-only.")

    def _describe(self) -> dict[str, Any]:
        return {"tables": self._tables}
