"""Dataset for fitted Spark ML pipeline models, saved with Spark's own ML persistence."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset
from pyspark.ml import PipelineModel

from fruits.datasets.filesystems import filesystem, spark_uri
from fruits.ml.local_models import LocalPipelineModel


class SparkMLModelDataset(AbstractDataset[PipelineModel, PipelineModel]):
    """A ``pyspark.ml.PipelineModel`` stored as a directory (local, HDFS or S3).

    Spark writes and reads the model itself, so the same entry works for local paths
    and for ``s3://`` / ``s3a://`` URIs on a cluster. Saving overwrites.
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = spark_uri(filepath)
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
        model_filesystem, path = filesystem(self._filepath)
        return model_filesystem.exists(f"{path}/metadata/_SUCCESS")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}
