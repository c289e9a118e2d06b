"""Dataset for fitted Spark ML pipeline models, saved with Spark's own ML persistence."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset
from pyspark import SparkContext
from pyspark.ml import PipelineModel

from fruits.datasets.filesystems import filesystem, spark_uri
from fruits.ml.local_models import LocalPipelineModel, UnsupportedStageError
from fruits.ml.spark_models import to_spark

# Set on a model read from a directory: where it came from.
_LOADED_FROM = "_fruits_loaded_from"


class SparkMLModelDataset(AbstractDataset[PipelineModel, PipelineModel]):
    """A ``pyspark.ml.PipelineModel`` stored as a directory (local, HDFS or S3).

    Spark writes and reads the model itself, so the same entry works for local paths
    and for ``s3://`` / ``s3a://`` URIs on a cluster. Saving overwrites, except a model
    read from this very directory (a reused model): it is there already, and rewriting it
    costs a second of Spark jobs and changes nothing.

    A model is read with fsspec and pyarrow and rebuilt in the JVM (``fruits.ml.spark_models``:
    the model ``PipelineModel.load`` returns, without its Spark job per file, ~1 s a model);
    one with stages of other kinds is read by Spark.

    The model saved or loaded last is kept in memory: loading it again (a later node of
    the same run) costs one read of the model's small metadata file, which Spark rewrites
    with a new timestamp and uid at every save, instead of half a second of Spark jobs.
    Another writer's model in the directory is read from it.
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = spark_uri(filepath)
        self.metadata = metadata
        self._kept: tuple[str, PipelineModel] | None = None

    def load(self) -> PipelineModel:
        """Read the fitted pipeline model back (the one in memory if it is the saved one)."""
        written = self._written()
        if self._kept is not None and self._kept[0] == written:  # never kept without one
            return self._kept[1]
        try:
            model = to_spark(self.load_without_spark(), SparkContext.getOrCreate())
        except UnsupportedStageError:
            model = PipelineModel.load(self._filepath)
        setattr(model, _LOADED_FROM, self._filepath)
        self._keep(model, written)
        return model

    def save(self, data: PipelineModel) -> None:
        """Write the fitted pipeline model, replacing any previous one (unless it is it)."""
        if getattr(data, _LOADED_FROM, None) != self._filepath or not self._exists():
            data.write().overwrite().save(self._filepath)
            setattr(data, _LOADED_FROM, self._filepath)
        self._keep(data, self._written())

    def load_without_spark(self) -> LocalPipelineModel:
        """The same model applied with NumPy, no JVM: for a handful of predictions."""
        model_filesystem, path = filesystem(self._filepath)
        return LocalPipelineModel(path, filesystem=model_filesystem)

    def _release(self) -> None:
        self._kept = None

    def _keep(self, model: PipelineModel, written: str | None) -> None:
        self._kept = (written, model) if written is not None else None

    def _written(self) -> str | None:
        """The saved model's metadata (its class, uid and save time), or None if absent."""
        model_filesystem, path = filesystem(self._filepath)
        try:
            return model_filesystem.cat_file(f"{path}/metadata/part-00000").decode()
        except FileNotFoundError:
            return None

    def _exists(self) -> bool:
        model_filesystem, path = filesystem(self._filepath)
        return model_filesystem.exists(f"{path}/metadata/_SUCCESS")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}
