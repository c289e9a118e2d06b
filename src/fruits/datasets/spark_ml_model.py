"""Dataset for fitted Spark ML pipeline models, saved with Spark's own ML persistence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fsspec
from kedro.io import AbstractDataset
from pyspark.ml import PipelineModel

from fruits.spark_ml_local import LocalPipelineModel


class SparkMLModelDataset(AbstractDataset[PipelineModel, PipelineModel]):
    """A ``pyspark.ml.PipelineModel`` stored as a directory (local, HDFS or S3).

    Spark writes and reads the model itself, so the same entry works for local paths
    and for ``s3://`` / ``s3a://`` URIs on a cluster. Saving overwrites.
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        # Spark resolves relative paths against the JVM's start directory; pin them to
        # the current one, as kedro-datasets' Spark datasets do.
        self._filepath = filepath if "://" in filepath else str(Path(filepath).resolve())
        self.metadata = metadata

    def load(self) -> PipelineModel:
        """Read the fitted pipeline model back."""
        return PipelineModel.load(self._filepath)

    def save(self, data: PipelineModel) -> None:
        """Write the fitted pipeline model, replacing any previous one."""
        data.write().overwrite().save(self._filepath)

    def load_without_spark(self) -> LocalPipelineModel:
        """The same model applied with NumPy, no JVM: for a handful of predictions."""
        return LocalPipelineModel(self._filepath)

    def _exists(self) -> bool:
        protocol, _ = fsspec.core.split_protocol(self._filepath)
        filesystem = fsspec.filesystem("s3" if protocol == "s3a" else (protocol or "file"))
        return filesystem.exists(f"{self._filepath}/metadata/_SUCCESS")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}
