"""One Kedro run of ingestion -> featurization -> reduction on 220 real images."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pyspark.ml import PipelineModel
from sklearn.decomposition import PCA as SklearnPCA

from fruits.ml.pca import project
from tests.conftest import keras_reference_features
from tests.helpers import FEATURES_VIEW, local_path, read_delta, read_view, spark_feature_view

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def images(pipeline_run) -> pd.DataFrame:
    return read_delta(pipeline_run.data_root / "02_intermediate" / "images")


@pytest.fixture(scope="module")
def image_features(pipeline_run) -> pd.DataFrame:
    return read_view(pipeline_run.data_root, FEATURES_VIEW)


@pytest.fixture(scope="module")
def pca_features(pipeline_run) -> pd.DataFrame:
    return read_delta(pipeline_run.data_root / "05_model_input" / "pca_features")


@pytest.fixture(scope="module")
def explained_variance(pipeline_run) -> dict:
    report = pipeline_run.data_root / "08_reporting" / "explained_variance.json"
    return json.loads(report.read_text())


def feature_matrix(image_features: pd.DataFrame) -> np.ndarray:
    return np.stack(image_features.sort_values("path")["features"].to_numpy()).astype(np.float64)


def test_one_row_per_image(pipeline_run, images, image_features, pca_features):
    expected = sorted(pipeline_run.image_files)
    assert len(expected) >= 200
    for table in (images, image_features, pca_features):
        assert sorted(local_path(uri) for uri in table["path"]) == expected


def test_labels_splits_and_hashes_come_from_the_files(images):
    import hashlib  # noqa: PLC0415

    for row in images.itertuples():
        image_file = local_path(row.path)
        assert row.label == image_file.parent.name
        assert row.split == image_file.parent.parent.name
        assert row.content == image_file.read_bytes()
        assert row.content_hash == hashlib.sha256(row.content).hexdigest()


def test_features_are_1280_finite_floats_with_labels(images, image_features):
    assert list(image_features.columns) == [
        "path", "label", "split", "content_hash", "backbone", "features",
    ]  # fmt: skip
    matrix = feature_matrix(image_features)
    assert matrix.shape == (len(images), 1280)
    assert np.isfinite(matrix).all()
    assert matrix.std(axis=0).max() > 0  # real, image-dependent features
    merged = images.merge(image_features, on="path", suffixes=("_image", "_feature"))
    assert (merged.label_image == merged.label_feature).all()
    assert (merged.split_image == merged.split_feature).all()


def test_features_equal_plain_keras(image_features, keras_reference_model):
    ordered = image_features.sort_values("path")
    reference = keras_reference_features(
        keras_reference_model, [local_path(uri) for uri in ordered["path"]]
    )
    assert np.abs(feature_matrix(image_features) - reference).max() <= 1e-4


def test_k_is_the_smallest_reaching_the_target(explained_variance, pca_features):
    cumulative = np.asarray(explained_variance["cumulative_explained_variance"])
    k = explained_variance["k"]
    target = explained_variance["variance_target"]
    assert target == 0.90
    assert explained_variance["k_source"] == "variance_target"
    assert cumulative[k - 1] >= target > cumulative[k - 2]
    assert explained_variance["variance_at_k"] == pytest.approx(cumulative[k - 1])
    assert all(len(vector) == k for vector in pca_features["pca_features"])


def test_explained_variance_matches_scikit_learn(explained_variance, image_features):
    reference = SklearnPCA(svd_solver="full").fit(feature_matrix(image_features))
    ratios = np.asarray(explained_variance["explained_variance_ratio"])
    compared = len(reference.explained_variance_ratio_)
    assert np.abs(ratios[:compared] - reference.explained_variance_ratio_).max() <= 1e-6
    # With fewer images than features the remaining components explain nothing.
    assert np.abs(ratios[compared:]).max(initial=0) <= 1e-6


def test_pca_model_reloads_and_reproduces_pca_features(pipeline_run, spark, pca_features):
    pca_model = PipelineModel.load(str(pipeline_run.data_root / "06_models" / "pca_model"))
    features = spark_feature_view(pipeline_run.data_root)
    reprojected = project(features, pca_model).toPandas().sort_values("path")
    stored = pca_features.sort_values("path")
    assert list(reprojected["path"]) == list(stored["path"])
    np.testing.assert_allclose(
        np.stack(reprojected["pca_features"]), np.stack(stored["pca_features"]), atol=1e-5
    )


def test_scree_plot_is_a_png_image(pipeline_run):
    with Image.open(pipeline_run.data_root / "08_reporting" / "scree_plot.png") as plot:
        assert plot.format == "PNG"
        assert plot.width > 500 and plot.height > 300
