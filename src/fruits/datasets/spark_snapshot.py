"""A Spark table replaced atomically: write a new snapshot, then move a pointer to it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fsspec.implementations.local import LocalFileSystem
from kedro.io import AbstractDataset
from pyspark.sql import DataFrame, SparkSession

from fruits.datasets.filesystems import filesystem, spark_uri

POINTER = "_CURRENT"


class SparkSnapshotDataset(AbstractDataset[DataFrame, DataFrame | None]):
    """A Parquet table kept as snapshots under one folder, with a ``_CURRENT`` pointer.

    ``save`` writes the new version to ``<filepath>/<snapshot>/`` (Spark's commit
    protocol) and only then replaces the one-line pointer file: a local rename, or one
    S3 PUT, both atomic. A reader, or the next run after a crash at any moment, sees
    either the previous complete version or the new one, never a partial one. That is
    what lets a run read this table and save its next version in the same run (the
    catalog gives the table two names: the previous version as an input, the next as
    an output). Snapshots other than the current and the previous one are deleted
    after each save, unfinished ones of killed runs included.

    ``load`` returns ``None`` before the first save.
    """

    def __init__(
        self,
        *,
        filepath: str,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = spark_uri(filepath)
        self._fs, self._fs_root = filesystem(self._filepath, fs_args)
        self.metadata = metadata

    def current_snapshot(self) -> str | None:
        """The name of the snapshot the pointer names, or None before the first save."""
        self._fs.invalidate_cache(self._fs_root)
        try:
            return self._fs.cat_file(f"{self._fs_root}/{POINTER}").decode().strip() or None
        except FileNotFoundError:
            return None

    def load(self) -> DataFrame | None:
        """The current snapshot, or None when nothing was saved yet."""
        snapshot = self.current_snapshot()
        if snapshot is None:
            return None
        return SparkSession.builder.getOrCreate().read.parquet(f"{self._filepath}/{snapshot}")

    def save(self, data: DataFrame) -> None:
        """Write a new snapshot, point to it, then delete the snapshots no longer needed."""
        previous = self.current_snapshot()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        snapshot = f"snapshot-{stamp}-{uuid.uuid4().hex[:8]}"
        data.write.parquet(f"{self._filepath}/{snapshot}")
        self._point_to(snapshot)
        keep = {snapshot, previous, POINTER}
        # Spark wrote behind fsspec's back: list afresh (s3fs caches listings).
        self._fs.invalidate_cache(self._fs_root)
        for entry in self._fs.ls(self._fs_root, detail=False):
            if entry.rstrip("/").rsplit("/", 1)[-1] not in keep:
                self._fs.rm(entry, recursive=True)

    def _point_to(self, snapshot: str) -> None:
        pointer = f"{self._fs_root}/{POINTER}"
        if isinstance(self._fs, LocalFileSystem):
            staged = f"{pointer}.{uuid.uuid4().hex}"
            self._fs.pipe_file(staged, snapshot.encode())
            self._fs.mv(staged, pointer)  # a rename: atomic on a local file system
        else:
            self._fs.pipe_file(pointer, snapshot.encode())  # one PUT: atomic on S3

    def _exists(self) -> bool:
        return self.current_snapshot() is not None

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "current": self.current_snapshot()}
