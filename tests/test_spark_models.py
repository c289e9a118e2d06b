"""Saved Spark ML models rebuilt in the JVM (fruits.ml.spark_models) equal Spark's own reader's."""

import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import PCA, Binarizer, StandardScaler
from pyspark.ml.linalg import DenseVector

from fruits.datasets import SparkMLModelDataset
from fruits.ml import spark_models
from fruits.ml.classifier import to_pca_vectors
from fruits.ml.local_models import LocalPipelineModel
from fruits.ml.pca import project, to_feature_vectors
from tests.helpers import spark_feature_view


def params(stage) -> dict:
    return {param.name: value for param, value in stage.extractParamMap().items()}


def assert_same_model(rebuilt: PipelineModel, loaded: PipelineModel) -> None:
    assert rebuilt.uid == loaded.uid
    assert [type(stage) for stage in rebuilt.stages] == [type(stage) for stage in loaded.stages]
    for ours, spark in zip(rebuilt.stages, loaded.stages, strict=True):
        assert ours.uid == spark.uid
        assert params(ours) == params(spark)


def assert_same_outputs(ours: list, theirs: list) -> None:
    """The same rows: other columns exactly, vectors and arrays but for their last bits.

    Native BLAS (OpenBLAS) may sum in an order that depends on the arrays' alignment in
    memory, and each task multiplies with its own copy of a model's matrices: two equal
    models were seen to score some rows of one task 1 ulp apart (with other Spark settings,
    not at all)."""
    assert len(ours) == len(theirs) > 0
    for our, their in zip(ours, theirs, strict=True):
        assert our.asDict().keys() == their.asDict().keys()
        for name, value in our.asDict().items():
            if isinstance(value, (list, DenseVector)):
                np.testing.assert_allclose(
                    np.asarray(value, dtype=float), np.asarray(their[name], dtype=float),
                    rtol=1e-12, atol=1e-12,
                )  # fmt: skip
            else:
                assert value == their[name], name


def test_every_stage_applied_locally_is_rebuilt():
    assert set(spark_models._CONSTRUCTORS) == set(LocalPipelineModel.SUPPORTED)


@pytest.mark.pipeline
def test_the_runs_models_rebuilt_equal_spark_loaded(spark, pipeline_run):
    """The PCA and the classifier of a real run: same stages and parameters, same outputs."""
    models = pipeline_run.data_root / "06_models"
    rebuilt, loaded = {}, {}
    for name in ("pca_model", "fruit_classifier"):
        path = str(models / name)
        rebuilt[name] = spark_models.to_spark(LocalPipelineModel(path), spark.sparkContext)
        loaded[name] = PipelineModel.load(path)
        assert_same_model(rebuilt[name], loaded[name])

    features = spark_feature_view(pipeline_run.data_root)

    def scored(models: dict) -> list:
        projected = to_pca_vectors(project(features, models["pca_model"]))
        columns = ("path", "pca_features", "probability", "prediction", "predicted_label")
        scores = models["fruit_classifier"].transform(projected)
        return scores.select(*columns).sort("path").collect()

    assert_same_outputs(scored(rebuilt), scored(loaded))


def test_a_scaler_then_pca_rebuilt_equals_spark_loaded(spark, tmp_path):
    rng = np.random.default_rng(5)
    data = rng.normal(size=(30, 5)) * [1, 2, 3, 0, 5] + [0, 1, 2, 3, 4]
    frame = to_feature_vectors(
        spark.createDataFrame([(row.tolist(),) for row in data], "features array<double>")
    )
    Pipeline(stages=[
        StandardScaler(withMean=True, inputCol="feature_vector", outputCol="scaled"),
        PCA(k=2, inputCol="scaled", outputCol="pca"),
    ]).fit(frame).save(str(tmp_path / "model"))  # fmt: skip
    loaded = PipelineModel.load(str(tmp_path / "model"))
    rebuilt = spark_models.to_spark(LocalPipelineModel(str(tmp_path / "model")), spark.sparkContext)
    assert_same_model(rebuilt, loaded)
    (scaler, pca), (spark_scaler, spark_pca) = rebuilt.stages, loaded.stages
    assert (scaler.mean, scaler.std, pca.pc) == (spark_scaler.mean, spark_scaler.std, spark_pca.pc)
    assert_same_outputs(rebuilt.transform(frame).collect(), loaded.transform(frame).collect())


def test_dataset_reads_other_stages_with_spark(spark, tmp_path):
    """A stage this project never saves (no rebuild for it) is still read, by Spark."""
    frame = spark.createDataFrame([(0.2,), (0.8,)], "value double")
    path = str(tmp_path / "model")
    Pipeline(stages=[Binarizer(threshold=0.5, inputCol="value", outputCol="high")]).fit(frame).save(
        path
    )
    model = SparkMLModelDataset(filepath=path).load()
    assert [row.high for row in model.transform(frame).collect()] == [0.0, 1.0]
