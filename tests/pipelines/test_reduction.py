"""Reduction: choosing k, fitting the PCA once, projecting, on real image features."""

import numpy as np
import pytest
from pyspark.sql import functions as F
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.preprocessing import StandardScaler as SklearnStandardScaler

from fruits.errors import FruitsInputError
from fruits.ml import pca
from fruits.ml.pca import choose_k, compare_with_projection, feature_moments, fit_pca, project
from fruits.params import ReductionParams
from fruits.pipelines.reduction.nodes import fit_or_reuse_pca
from fruits.spark import delta


@pytest.fixture(scope="module")
def image_features(real_image_features):
    """Real MobileNetV2 features of 88 images (22 classes)."""
    return real_image_features


def settings(**changes) -> ReductionParams:
    defaults = {
        "standardize": False,
        "variance_target": 0.9,
        "k": None,
        "refit": "on_change",
        "refit_change_share": 0.2,
    }
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
    projected = project(image_features, pca_model)
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
    rows = project(image_features, pca_model).orderBy("path").collect()
    ours = np.array([row.pca_features for row in rows], dtype=np.float64)
    reference = SklearnPCA(n_components=report["k"], svd_solver="full").fit(feature_matrix)
    theirs = reference.transform(feature_matrix)
    centered = ours - ours.mean(axis=0)
    signs = np.sign(np.sum(centered * theirs, axis=0))  # components are defined up to sign
    assert np.abs(centered * signs - theirs).max() <= 1e-3 * np.abs(theirs).max()


def test_k_above_the_number_of_images_is_refused(image_features):
    with pytest.raises(FruitsInputError, match="reduction.k=500 is more than the 88 images"):
        fit_pca(image_features, standardize=False, variance_target=0.9, k=500)


def delta_features(spark, frame, path):
    """``frame`` as a Delta table with the keys the reduction compares, read back."""
    keyed = frame.withColumn("content_hash", F.sha2("path", 256)).withColumn("backbone", F.lit("b"))
    keyed.write.format("delta").mode("overwrite").save(str(path))
    return spark.read.format("delta").load(str(path))


def test_pca_is_reused_for_the_same_table_version_and_settings(spark, image_features, tmp_path):
    table = delta_features(spark, image_features, tmp_path / "features")
    model, report, _ = fit_or_reuse_pca(table, settings(), None, None, None)
    assert report["fitted_rows"] == 88 and report["changed_since_fit"] == 0
    same_version = spark.read.format("delta").load(str(tmp_path / "features"))
    reused = fit_or_reuse_pca(same_version, settings(), model, report, None)
    assert reused[0] is model and reused[1] is report
    refit = fit_or_reuse_pca(table, settings(refit="always"), model, report, None)
    assert refit[0] is not model and refit[1]["fit"] != report["fit"]
    other_target = fit_or_reuse_pca(table, settings(variance_target=0.8), model, report, None)
    assert other_target[0] is not model and other_target[1]["variance_target"] == 0.8


def test_new_images_below_the_share_are_projected_on_the_same_fit(spark, image_features, tmp_path):
    """Changes since the fit add up run after run; above refit_change_share, a refit."""
    first = delta_features(spark, image_features.limit(80), tmp_path / "features")
    model, report, _ = fit_or_reuse_pca(first, settings(), None, None, None)
    projected = project(first, model).withColumn("pca_fit", F.lit(report["fit"])).localCheckpoint()
    more = delta_features(spark, image_features.limit(88), tmp_path / "features")  # 8 new
    kept_model, kept, changes = fit_or_reuse_pca(more, settings(), model, report, projected)
    assert kept_model is model and kept["fit"] == report["fit"]
    assert (changes["added"], changes["unchanged"], changes["replaced"]) == (8, 80, 0)
    assert kept["changed_since_fit"] == 8
    assert kept["input_digest"] != report["input_digest"]
    # 8 + 8 changes out of 80 fitted rows: 20%, still at most the share.
    again = fit_or_reuse_pca(more, settings(), model, {**kept, "input_digest": "x"}, projected)
    assert again[0] is model and again[1]["changed_since_fit"] == 16
    # One more change goes above 20%: refit, on every current row.
    fewer = delta_features(spark, image_features.limit(87), tmp_path / "features")
    refit_model, refit, _ = fit_or_reuse_pca(fewer, settings(), model, again[1], projected)
    assert refit_model is not model and refit["fit"] != report["fit"]
    assert refit["fitted_rows"] == 87 and refit["changed_since_fit"] == 0
    none_share = fit_or_reuse_pca(more, settings(refit_change_share=0.0), model, report, projected)
    assert none_share[0] is not model


def test_projection_changes_count_added_removed_and_changed_rows(spark):
    """A row is its (path, content, backbone): new bytes or a new backbone under a path
    count once as added and once as removed; the other columns are not compared."""
    identity = ["path", "content_hash", "backbone"]
    projected = spark.createDataFrame(
        [(f"p{i}", f"h{i}", "b1", "fit1" if i < 8 else "fit0") for i in range(10)],
        [*identity, "pca_fit"],
    )
    current = spark.createDataFrame(
        [(f"p{i}", f"h{i}", "b1", 1.0) for i in range(3, 10)]  # p0-p2 removed; values differ
        + [("p3x", "h3", "b1", 1.0), ("p10", "h10", "b1", 1.0)]  # same bytes, new path; new
        + [("p9", "h9-new", "b1", 1.0)],  # p9's bytes changed: also under its old identity
        [*identity, "features"],
    ).where(F.col("content_hash") != "h9")
    changes = compare_with_projection(current, projected, "fit1")
    assert (changes.added, changes.removed, changes.replaced) == (2, 3, 1)
    assert (changes.unchanged, changes.other_fit) == (5, 1)  # p3-p7 with fit1, p8 with fit0
    assert changes.added_paths == ["p10", "p3x"] and changes.replaced_paths == ["p9"]
    assert changes.removed_paths == ["p0", "p1", "p2"]
    assert changes.rows_changed == 3 + 2 + 2
    assert compare_with_projection(projected, projected, "fit1").rows_changed == 0
    other_backbone = projected.withColumn("backbone", F.lit("b2"))
    assert compare_with_projection(other_backbone, projected, "fit1").rows_changed == 20


def test_projection_changes_give_the_kinds_a_query_of_the_table_gives(
    spark, image_features, tmp_path
):
    """The kinds counted by the refit check are those ``count_held`` finds in the changes
    actually written: for the same fit (new, changed, removed images) and for a new fit."""
    first = delta_features(spark, image_features.limit(80), tmp_path / "features")
    model, report, _ = fit_or_reuse_pca(first, settings(), None, None, None)
    table = str(tmp_path / "pca_features")
    project(first, model).withColumn("pca_fit", F.lit(report["fit"])).write.format("delta").save(
        table
    )
    previous = spark.read.format("delta").load(table)
    # 8 new images, 5 removed, 2 with new bytes under their path.
    later = delta_features(spark, image_features.limit(88), tmp_path / "later").where(
        ~F.col("path").isin([row.path for row in image_features.limit(5).collect()])
    )
    changed_paths = [row.path for row in image_features.offset(10).limit(2).collect()]
    later = later.withColumn(
        "content_hash",
        F.when(F.col("path").isin(changed_paths), F.lit("new bytes")).otherwise(
            F.col("content_hash")
        ),
    )
    changes = compare_with_projection(later, previous, report["fit"])
    assert (changes.added, changes.removed, changes.replaced) == (8, 5, 2)
    for fit in (report["fit"], "a new fit"):
        made = pca.project_features(later, model, fit, previous, changes).rows()
        queried = delta.count_held(made.rows, previous, ["path"])
        assert made.held == queried == changes.held(fit)
        # The same rows as the queries of both tables make, without the compared paths.
        unaided = pca.project_features(later, model, fit, previous).rows()
        assert _sorted_rows(made.rows) == _sorted_rows(unaided.rows)
    assert changes.held("a new fit") == {delta.UPSERT: 75, delta.DELETE: 5}


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


def test_a_reused_model_is_not_rewritten(spark, image_features, tmp_path):
    """Saving the model read from the same directory (a reuse) leaves its files alone."""
    from fruits.datasets import SparkMLModelDataset  # noqa: PLC0415

    table = delta_features(spark, image_features, tmp_path / "features")
    dataset = SparkMLModelDataset(filepath=str(tmp_path / "pca_model"))
    dataset.save(fit_or_reuse_pca(table, settings(), None, None, None)[0])

    def files() -> dict[str, int]:
        return {str(p): p.stat().st_mtime_ns for p in (tmp_path / "pca_model").rglob("*")}

    written = files()
    dataset.save(SparkMLModelDataset(filepath=str(tmp_path / "pca_model")).load())
    assert files() == written
    dataset.save(fit_or_reuse_pca(table, settings(refit="always"), None, None, None)[0])
    assert files() != written


def test_the_saved_model_is_loaded_from_memory_until_another_is_written(
    spark, image_features, tmp_path
):
    """A later node loads the model a run saved without Spark reading it back; a model
    another writer saved there since is read from the directory."""
    from fruits.datasets import SparkMLModelDataset  # noqa: PLC0415

    table = delta_features(spark, image_features, tmp_path / "features")
    dataset = SparkMLModelDataset(filepath=str(tmp_path / "pca_model"))
    fitted = fit_or_reuse_pca(table, settings(), None, None, None)[0]
    dataset.save(fitted)
    assert dataset.load() is fitted
    refit = fit_or_reuse_pca(table, settings(refit="always"), None, None, None)[0]
    SparkMLModelDataset(filepath=str(tmp_path / "pca_model")).save(refit)
    loaded = dataset.load()
    assert loaded is not refit and loaded.uid == refit.uid
    assert dataset.load() is loaded
    dataset.release()
    assert dataset.load() is not loaded


def _sorted_rows(changes) -> list:
    return sorted(
        (row.asDict() for row in changes.collect()), key=lambda row: (row["path"], row["_change"])
    )
