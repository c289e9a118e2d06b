"""Saved Spark ML pipeline models rebuilt in the JVM from their files, without Spark jobs.

Spark's reader (``PipelineModel.load``) reads each stage's one-line JSON metadata with a
one-task Spark job and its fitted arrays with a Parquet query: about 1 s per model in a
warm session and 2 to 4 s for the first one (measured), paid on the critical path of every
re-run that reuses the PCA and the classifier. Here the same files are read as
``LocalPipelineModel`` reads them (fsspec and pyarrow), each stage's JVM object is built
from its fitted arrays with the constructor Spark's reader calls, and its parameters are
set by Spark's own metadata reader (``DefaultParamsReader``): the same classes, uids,
parameters and numbers as ``PipelineModel.load`` (tested). Spark keeps those
constructors package-private; they are public in the bytecode.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from py4j.java_gateway import JavaObject
from pyspark import SparkContext
from pyspark.ml import PipelineModel
from pyspark.ml.common import _py2java
from pyspark.ml.linalg import DenseMatrix, DenseVector, SparseMatrix, SparseVector

from fruits.ml.local_models import SPARSE, LocalPipelineModel, LocalStage


def _saved(spark_context: SparkContext, stage: LocalStage, name: str) -> JavaObject:
    """The stage's saved vector or matrix ``name`` in the JVM, in the layout Spark saved.

    The layout matters: a row-major matrix (a classifier's coefficients) multiplied as a
    column-major one sums in another order, and the last bits of the scores differ.
    """
    encoded = stage.data[name]
    sparse = encoded["type"] == SPARSE
    if "numRows" not in encoded:
        if sparse:
            vector = SparseVector(encoded["size"], encoded["indices"], encoded["values"])
        else:
            vector = DenseVector(encoded["values"])
        return _py2java(spark_context, vector)
    shape = (encoded["numRows"], encoded["numCols"])
    if sparse:
        indices = (encoded["colPtrs"], encoded["rowIndices"], encoded["values"])
        matrix = SparseMatrix(*shape, *indices, encoded["isTransposed"])
    else:
        matrix = DenseMatrix(*shape, encoded["values"], encoded["isTransposed"])
    return _py2java(spark_context, matrix)


def java_pca_model(
    spark_context: SparkContext, uid: str, axes: np.ndarray, ratios: np.ndarray
) -> JavaObject:
    """A JVM ``PCAModel`` with these axes (columns) and explained-variance ratios."""
    n_features, k = axes.shape
    return spark_context._jvm.org.apache.spark.ml.feature.PCAModel(
        uid,
        _py2java(spark_context, DenseMatrix(n_features, k, axes.ravel(order="F").tolist())),
        _py2java(spark_context, DenseVector(ratios.tolist())),
    )


def _java_stage(spark_context: SparkContext, stage: LocalStage) -> JavaObject:
    ml = spark_context._jvm.org.apache.spark.ml
    return _CONSTRUCTORS[stage.kind](spark_context, ml, stage)


# The constructor Spark's reader calls for each stage kind, from the stage's fitted arrays.
_CONSTRUCTORS: dict[str, Callable[[SparkContext, object, LocalStage], JavaObject]] = {
    "PCAModel": lambda sc, ml, stage: ml.feature.PCAModel(
        stage.uid, _saved(sc, stage, "pc"), _saved(sc, stage, "explainedVariance")
    ),
    "StandardScalerModel": lambda sc, ml, stage: ml.feature.StandardScalerModel(
        stage.uid, _saved(sc, stage, "std"), _saved(sc, stage, "mean")
    ),
    "LogisticRegressionModel": lambda sc, ml, stage: ml.classification.LogisticRegressionModel(
        stage.uid,
        _saved(sc, stage, "coefficientMatrix"),
        _saved(sc, stage, "interceptVector"),
        int(stage.data["numClasses"]),
        bool(stage.data["isMultinomial"]),
    ),
    "IndexToString": lambda sc, ml, stage: ml.feature.IndexToString(stage.uid),
}


def to_spark(saved: LocalPipelineModel, spark_context: SparkContext) -> PipelineModel:
    """The Spark ML ``PipelineModel`` that ``PipelineModel.load`` would return for ``saved``."""
    jvm = spark_context._jvm
    ml = jvm.org.apache.spark.ml
    stages = spark_context._gateway.new_array(ml.Transformer, len(saved.stages))
    for index, stage in enumerate(saved.stages):
        java_stage = _java_stage(spark_context, stage)
        # Spark's reader sets the saved parameters (and defaults) exactly so.
        metadata = ml.util.DefaultParamsReader.parseMetadata(stage.metadata, "")
        metadata.getAndSetParams(java_stage, jvm.scala.Option.empty())
        stages[index] = java_stage
    return PipelineModel._from_java(ml.PipelineModel(saved.uid, stages))
