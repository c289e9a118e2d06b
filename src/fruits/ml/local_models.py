"""Apply saved Spark ML pipeline models with NumPy, without starting Spark.

Spark ML saves a model as JSON metadata plus a Parquet file of its fitted arrays.
For the few stages this project saves (StandardScaler, PCA, logistic regression,
IndexToString), reading those files and doing the arithmetic in NumPy gives the same
numbers as ``PipelineModel.transform`` (tested), in milliseconds, where starting a
JVM takes seconds: what one photo in ``fruits-predict`` needs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pyarrow.parquet as pq

# Spark ML's vector and matrix encodings: type 0 = sparse, 1 = dense.
SPARSE, DENSE = 0, 1


def _vector(encoded: dict[str, Any]) -> np.ndarray:
    if encoded["type"] == DENSE:
        return np.asarray(encoded["values"], dtype=np.float64)
    vector = np.zeros(encoded["size"], dtype=np.float64)
    vector[np.asarray(encoded["indices"], dtype=np.int64)] = encoded["values"]
    return vector


def _matrix(encoded: dict[str, Any]) -> np.ndarray:
    rows, cols, values = encoded["numRows"], encoded["numCols"], encoded["values"]
    transposed = encoded["isTransposed"]
    if encoded["type"] == DENSE:
        # Column-major, or row-major when transposed.
        order = "C" if transposed else "F"
        return np.asarray(values, dtype=np.float64).reshape((rows, cols), order=order)
    # Compressed sparse columns (compressed rows when transposed).
    matrix = np.zeros((rows, cols), dtype=np.float64)
    pointers, indices = encoded["colPtrs"], encoded["rowIndices"]
    for major in range(len(pointers) - 1):
        for position in range(pointers[major], pointers[major + 1]):
            if transposed:
                matrix[major, indices[position]] = values[position]
            else:
                matrix[indices[position], major] = values[position]
    return matrix


class UnsupportedStageError(ValueError):
    """A saved stage of a kind this module cannot apply (nor ``fruits.ml.spark_models`` rebuild)."""


@dataclass
class LocalStage:
    """One fitted stage: its Spark class name, parameters and fitted arrays.

    ``uid`` and ``metadata`` (the saved JSON line as is) let ``fruits.ml.spark_models``
    rebuild the Spark stage with Spark's own parameter reader.
    """

    spark_class: str
    params: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    uid: str = ""
    metadata: str = ""
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return self.spark_class.rsplit(".", 1)[-1]

    def array(self, name: str) -> np.ndarray:
        """The fitted vector or matrix ``name`` as a NumPy array, decoded once.

        Decoding is per element (Spark saves Python lists): 4 ms for a 1280 x 196 PCA,
        more than the arithmetic, so it is kept for every later call.
        """
        if name not in self._arrays:
            encoded = self.data[name]
            decode = _matrix if "numRows" in encoded else _vector
            self._arrays[name] = decode(encoded)
        return self._arrays[name]


class LocalPipelineModel:
    """A saved ``pyspark.ml.PipelineModel`` applied with NumPy.

    Args:
        path: The model's directory (local path or fsspec URI such as ``s3://``), or the
            path within ``filesystem`` when given.
        storage_options: Passed to fsspec for remote paths.
        filesystem: The fsspec file system holding ``path`` (a dataset's, with its settings).

    Raises:
        UnsupportedStageError: A stage of a kind not in ``SUPPORTED``.
    """

    SUPPORTED = ("StandardScalerModel", "PCAModel", "LogisticRegressionModel", "IndexToString")

    def __init__(
        self,
        path: str,
        storage_options: dict[str, Any] | None = None,
        filesystem: fsspec.AbstractFileSystem | None = None,
    ) -> None:
        if filesystem is None:
            self._fs, self._root = fsspec.core.url_to_fs(path, **(storage_options or {}))
        else:
            self._fs, self._root = filesystem, path
        self.metadata = self._metadata(self._root)
        metadata = json.loads(self.metadata)
        self.uid = metadata["uid"]
        stage_dirs = {
            d.rsplit("/", 1)[-1]: d for d in self._fs.ls(f"{self._root}/stages", detail=False)
        }
        self.stages = []
        for index, uid in enumerate(metadata["paramMap"]["stageUids"]):
            stage_dir = stage_dirs[f"{index}_{uid}"]
            saved = self._metadata(stage_dir)
            stage_metadata = json.loads(saved)
            stage = LocalStage(
                stage_metadata["class"],
                {**stage_metadata.get("defaultParamMap", {}), **stage_metadata["paramMap"]},
                uid=uid,
                metadata=saved,
            )
            if stage.kind not in self.SUPPORTED:
                raise UnsupportedStageError(
                    f"{path}: stage {stage.kind} cannot be applied without Spark."
                )
            if self._fs.exists(f"{stage_dir}/data"):
                table = pq.read_table(f"{stage_dir}/data", filesystem=self._fs)
                stage.data = table.to_pylist()[0]
            self.stages.append(stage)
        # What the model computes, not when it was saved (Spark's metadata has a
        # timestamp and uids): equal for an identical model saved again.
        fitted = [(stage.spark_class, stage.params, stage.data) for stage in self.stages]
        self.digest = hashlib.sha256(
            json.dumps(fitted, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]

    def _metadata(self, directory: str) -> str:
        """The saved metadata's JSON line, as Spark wrote it."""
        with self._fs.open(f"{directory}/metadata/part-00000", "r") as handle:
            return handle.readline()

    def transform(self, vectors: np.ndarray) -> dict[str, Any]:
        """Apply every stage to a batch of row vectors.

        Returns:
            The columns the stages produce: ``vector`` (the last numeric output) and,
            for a classifier, ``probability``, ``prediction`` and ``labels`` (class
            names in the probability vector's order).
        """
        output: dict[str, Any] = {"vector": np.asarray(vectors, dtype=np.float64)}
        for stage in self.stages:
            apply = getattr(self, f"_apply_{stage.kind}")
            apply(stage, output)
        return output

    @staticmethod
    def _apply_StandardScalerModel(stage: LocalStage, output: dict[str, Any]) -> None:  # noqa: N802
        x = output["vector"]
        if stage.params.get("withMean", False):
            x = x - stage.array("mean")
        if stage.params.get("withStd", True):
            std = stage.array("std")
            x = x * np.divide(1.0, std, out=np.zeros_like(std), where=std != 0)
        output["vector"] = x

    @staticmethod
    def _apply_PCAModel(stage: LocalStage, output: dict[str, Any]) -> None:  # noqa: N802
        output["vector"] = output["vector"] @ stage.array("pc")

    @staticmethod
    def _apply_LogisticRegressionModel(stage: LocalStage, output: dict[str, Any]) -> None:  # noqa: N802
        coefficients = stage.array("coefficientMatrix")
        margins = output["vector"] @ coefficients.T + stage.array("interceptVector")
        if stage.data["isMultinomial"]:
            shifted = np.exp(margins - margins.max(axis=1, keepdims=True))
            probability = shifted / shifted.sum(axis=1, keepdims=True)
        else:
            positive = 1.0 / (1.0 + np.exp(-margins[:, 0]))
            probability = np.column_stack([1.0 - positive, positive])
        output["probability"] = probability
        output["prediction"] = probability.argmax(axis=1)

    @staticmethod
    def _apply_IndexToString(stage: LocalStage, output: dict[str, Any]) -> None:  # noqa: N802
        output["labels"] = list(stage.params["labels"])
        output["predicted_label"] = [output["labels"][i] for i in output["prediction"]]
