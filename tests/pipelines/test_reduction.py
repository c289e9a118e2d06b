"""Reduction: choosing k, fitting the PCA once, projecting, on real image features."""

import numpy as np
import pytest
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.preprocessing import StandardScaler as SklearnStandardScaler

from fruits.errors import FruitsInputError
from fruits.ml.pca import choose_k, feature_moments, fit_pca, pca_input_digest, project_features
from fruits.params import ReductionParams
from fruits.pipelines.reduction.nodes import fit_or_reuse_pca


@pytest.fixture(scope="module")
def image_features(real_image_features):
    """Real MobileNetV2 features of 88 images (22 classes)."""
    return real_image_features


def settings(**changes) -> ReductionParams:
    defaults = {"standardize": False, "variance_target": 0.9, "k": None, "refit": "on_change"}
    return ReductionParams.model_validate(defaults | changes)


@pytest.fixture(scope="module")
def feature_matrix(image_features) -> np.ndarray:
    rows = image_features.orderBy("path").select("features").collect()
    return np.array([row.features for row in rows], dtype=np.float64)


@pytest.mark.parametrize(
    ("ratios", "target", "expected"),
    [
        ([0.5, 0.3, 0.15, 0.05], 0.5, 1),
        ([0.5, 0.3, 0.15, 0.05], 0.8, 2),
        ([0.5, 0.3, 0.15, 0.05], 0.81, 3),
        ([0.5, 0.3, 0.15, 0.05], 1.0, 4),
        ([0.6, 0.3, 0.1 - 1e-15], 1.0, 3),  # rounding leaves the sum just under 1
    ],
)
def test_choose_k_is_the_smallest_k_reaching_the_target(ratios, target, expected):
    assert choose_k(np.array(ratios), target) == expected


def test_fixed_k_overrides_the_variance_target(image_features):
    pca_model, report = fit_pca(image_features, standardize=False, variance_target=0.9, k=7)
    assert report["k"] == 7 and report["k_source"] == "fixed"
    projected = project_features(image_features, pca_model)
    assert projected.columns == ["path", "label", "split", "pca_features"]
    assert {len(row.pca_features) for row in projected.collect()} == {7}


def test_standardized_pca_matches_scikit_learn(image_features, feature_matrix):
    _, report = fit_pca(image_features, standardize=True, variance_target=0.8, k=None)
    # Spark scales to unit sample variance; zero-variance features stay zero in both.
    scaled = SklearnStandardScaler().fit_transform(feature_matrix)
    reference = SklearnPCA(svd_solver="full").fit(scaled)
    compared = len(reference.explained_variance_ratio_)
    ratios = np.asarray(report["explained_variance_ratio"])
    assert np.abs(ratios[:compared] - reference.explained_variance_ratio_).max() <= 1e-6
    assert report["k"] == choose_k(reference.explained_variance_ratio_, 0.8)
    assert report["standardize"] is True


def test_projection_is_the_centered_decomposition(image_features, feature_matrix):
    """Spark projects uncentered vectors: equal to scikit-learn's up to a constant shift."""
    pca_model, report = fit_pca(image_features, standardize=False, variance_target=0.9, k=None)
    rows = project_features(image_features, pca_model).orderBy("path").collect()
    ours = np.array([row.pca_features for row in rows], dtype=np.float64)
    reference = SklearnPCA(n_components=report["k"], svd_solver="full").fit(feature_matrix)
    theirs = reference.transform(feature_matrix)
    centered = ours - ours.mean(axis=0)
    signs = np.sign(np.sum(centered * theirs, axis=0))  # components are defined up to sign
    assert np.abs(centered * signs - theirs).max() <= 1e-3 * np.abs(theirs).max()


def test_k_above_the_number_of_images_is_refused(image_features):
    with pytest.raises(FruitsInputError, match="reduction.k=500 is more than the 88 images"):
        fit_pca(image_features, standardize=False, variance_target=0.9, k=500)


def test_pca_is_reused_only_for_the_same_input_and_settings(image_features):
    model, report = fit_or_reuse_pca(image_features, settings(), None, None)
    assert report["input_digest"] == pca_input_digest(image_features.orderBy("label"))
    reused = fit_or_reuse_pca(image_features, settings(), model, report)
    assert reused[0] is model and reused[1] is report
    refit = fit_or_reuse_pca(image_features, settings(refit="always"), model, report)
    assert refit[0] is not model
    other_target = fit_or_reuse_pca(image_features, settings(variance_target=0.8), model, report)
    assert other_target[0] is not model and other_target[1]["variance_target"] == 0.8
    fewer_images = image_features.limit(image_features.count() - 1)
    assert pca_input_digest(fewer_images) != report["input_digest"]


def test_feature_moments_equal_numpy_in_any_partitioning(spark, feature_matrix):
    """The tree-merged per-partition moments equal NumPy's on the whole matrix."""
    rows = [(row.astype(np.float32).tolist(),) for row in feature_matrix]
    for partitions in (1, 3, 7):
        frame = spark.createDataFrame(rows, "features array<float>").repartition(partitions)
        n, mean, covariance = feature_moments(frame)
        as_float32 = feature_matrix.astype(np.float32).astype(np.float64)
        assert n == len(feature_matrix)
        np.testing.assert_allclose(mean, as_float32.mean(axis=0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(covariance, np.cov(as_float32, rowvar=False), atol=1e-10)


def test_pca_on_no_features_is_an_input_error(spark):
    empty = spark.createDataFrame([], "features array<float>")
    with pytest.raises(FruitsInputError, match="No image features"):
        fit_pca(empty, standardize=False, variance_target=0.9, k=None)


def test_pca_on_one_image_is_an_input_error(image_features):
    """One image has no variance: k would be 1280 and every ratio NaN."""
    with pytest.raises(FruitsInputError, match="at least 2 images; there is 1"):
        fit_pca(image_features.limit(1), standardize=False, variance_target=0.9, k=None)


def test_pca_on_copies_of_one_image_is_an_input_error(image_features):
    one = image_features.limit(1)
    with pytest.raises(FruitsInputError, match="3 images have identical features"):
        fit_pca(one.union(one).union(one), standardize=False, variance_target=0.9, k=None)
