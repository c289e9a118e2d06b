"""Nodes of the reduction pipeline."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure
from pyspark import SparkContext
from pyspark.ml import PipelineModel
from pyspark.ml.common import _py2java
from pyspark.ml.feature import PCAModel, StandardScaler
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.linalg import DenseMatrix, DenseVector
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits.errors import FruitsInputError
from fruits.pipelines.featurization.backbone import FEATURE_DIM
from fruits.refit import check_refit_policy, frame_digest, reuses_previous

logger = logging.getLogger(__name__)

# Column names of the PCA model's input and output, for users applying it to new images.
FEATURE_VECTOR = "feature_vector"
PCA_VECTOR = "pca_vector"
_SCALED_VECTOR = "scaled_feature_vector"
# Row count, mean vector and scatter matrix (sum of outer products of centred rows).
Moments = tuple[int, np.ndarray, np.ndarray]


def to_feature_vectors(image_features: DataFrame) -> DataFrame:
    """Add the ``feature_vector`` column (an ML vector) that ``pca_model`` expects."""
    return image_features.withColumn(FEATURE_VECTOR, array_to_vector(F.col("features")))


def choose_k(explained_variance_ratio: np.ndarray, variance_target: float) -> int:
    """Smallest number of components whose cumulative explained variance reaches the target."""
    cumulative = np.cumsum(explained_variance_ratio)
    # Float rounding can leave the full sum a hair under 1.0; then every component is needed.
    reached = np.flatnonzero(cumulative >= variance_target - 1e-12)
    return int(reached[0]) + 1 if reached.size else len(cumulative)


def principal_axes(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, >= 0) and unit eigenvectors (columns) of a covariance matrix.

    Signs are fixed so that each axis's largest-magnitude loading is positive, which
    makes the projection reproducible from run to run.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues[::-1].clip(min=0), eigenvectors[:, ::-1]
    rows = np.argmax(np.abs(eigenvectors), axis=0)
    signs = np.sign(eigenvectors[rows, np.arange(eigenvectors.shape[1])])
    return eigenvalues, eigenvectors * np.where(signs == 0, 1, signs)


def _pca_model(
    spark_context: SparkContext, axes: np.ndarray, ratios: np.ndarray, input_col: str
) -> PCAModel:
    """A genuine Spark ML ``PCAModel`` (transform, save, load) holding the given axes.

    Spark keeps the constructor package-private, so it is called through the JVM.
    """
    n_features, k = axes.shape
    java_model = spark_context._jvm.org.apache.spark.ml.feature.PCAModel(
        spark_context._jvm.org.apache.spark.ml.util.Identifiable.randomUID("pca"),
        _py2java(spark_context, DenseMatrix(n_features, k, axes.ravel(order="F").tolist())),
        _py2java(spark_context, DenseVector(ratios.tolist())),
    )
    pca = PCAModel(java_model)
    pca._set(k=k, inputCol=input_col, outputCol=PCA_VECTOR)
    return pca


def check_pca_settings(variance_target: float, k: int | None, refit: str = "on_change") -> None:
    """Refuse a variance target outside (0, 1], a k outside 1..1280 or an unknown refit
    policy, before any work."""
    check_refit_policy("reduction.refit", refit)
    if isinstance(variance_target, bool) or not isinstance(variance_target, int | float):
        raise FruitsInputError(
            f"reduction.variance_target={variance_target!r} is not a number: use a share of "
            "the variance in (0, 1], e.g. 0.9."
        )
    if not 0 < variance_target <= 1:
        raise FruitsInputError(
            f"reduction.variance_target={variance_target} is outside (0, 1]: use a share of "
            "the variance, e.g. 0.9."
        )
    if k is not None and (
        isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= FEATURE_DIM
    ):
        raise FruitsInputError(
            f"reduction.k={k!r} must be null or an integer between 1 and {FEATURE_DIM} "
            "(the number of features)."
        )


def feature_moments(image_features: DataFrame) -> tuple[int, np.ndarray, np.ndarray]:
    """Count, mean and covariance matrix of the ``features`` column, in one pass.

    Each Spark task reduces its rows to (count, mean, scatter matrix) with NumPy matrix
    products; the partial results are merged in a tree across the executors (Chan's
    parallel formula, numerically stable), so only one d x d matrix reaches the driver.
    Spark ML's ``Correlation`` (``RowMatrix``) does the same reduction with one rank-1
    update of the d x d matrix per row, and needs a second pass for the variances;
    here a whole Arrow batch is one matrix product.

    Returns:
        ``(n, mean, covariance)``; the covariance is the sample one (divided by n - 1).
    """
    partials = image_features.select("features").mapInArrow(
        _partition_moments, "n long, mean binary, scatter binary"
    )
    merged = partials.rdd.map(_decode_moments).treeAggregate(
        None, _merge_moments, _merge_moments, depth=2
    )
    if merged is None:
        raise FruitsInputError(
            "No image features to fit the PCA on: every image was rejected (see "
            "rejected_images for why) or the raw image folder holds none."
        )
    n, mean, scatter = merged
    return n, mean, scatter / max(n - 1, 1)


def _partition_moments(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    moments: Moments | None = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        flat = batch.column("features").flatten().to_numpy(zero_copy_only=False)
        rows = flat.astype(np.float64).reshape(batch.num_rows, -1)
        mean = rows.mean(axis=0)
        centered = rows - mean
        batch_moments = (batch.num_rows, mean, centered.T @ centered)
        moments = _merge_moments(moments, batch_moments)
    if moments is not None:
        n, mean, scatter = moments
        yield pa.RecordBatch.from_pydict(
            {"n": [n], "mean": [mean.tobytes()], "scatter": [scatter.tobytes()]},
            schema=pa.schema([("n", pa.int64()), ("mean", pa.binary()), ("scatter", pa.binary())]),
        )


def _decode_moments(row: Any) -> Moments:
    mean = np.frombuffer(row["mean"], dtype=np.float64)
    scatter = np.frombuffer(row["scatter"], dtype=np.float64).reshape(len(mean), len(mean))
    return row["n"], mean, scatter


def _merge_moments(left: Moments | None, right: Moments | None) -> Moments | None:
    if left is None or right is None:
        return right if left is None else left
    (n_left, mean_left, scatter_left), (n_right, mean_right, scatter_right) = left, right
    n = n_left + n_right
    delta = mean_right - mean_left
    mean = mean_left + delta * (n_right / n)
    scatter = scatter_left + scatter_right + np.outer(delta, delta) * (n_left * n_right / n)
    return n, mean, scatter


def fit_pca(
    image_features: DataFrame,
    standardize: bool,
    variance_target: float,
    k: int | None,
) -> tuple[PipelineModel, dict[str, Any]]:
    """Decompose the features' covariance once, choose k, and build the PCA model.

    The covariance matrix is reduced over the distributed features
    (``feature_moments``); its eigendecomposition is a d x d problem solved on the
    driver, as Spark's own ``PCA`` does, but with NumPy's LAPACK: Spark's pure-Java
    fallback returns non-orthogonal components when there are fewer images than
    features. With ``standardize`` the correlation matrix is decomposed instead.
    k is ``k`` when given, else the smallest k whose cumulative explained variance
    reaches ``variance_target``.

    Args:
        image_features: ``features`` arrays, one row per image.
        standardize: Scale every feature to unit variance (and zero mean) before PCA.
        variance_target: Share of the variance to keep, in (0, 1].
        k: Fixed number of components, or None to derive it from ``variance_target``.

    Returns:
        The fitted ``pca_model`` (a ``PipelineModel``: input ``feature_vector``, output
        ``pca_vector``) and the ``explained_variance`` report.
    """
    check_pca_settings(variance_target, k)
    n_images, _, covariance = feature_moments(image_features)
    n_features = covariance.shape[0]
    if k is not None and not 1 <= k <= min(n_images, n_features):
        raise FruitsInputError(
            f"reduction.k={k} is more than the {n_images} images and {n_features} "
            f"features allow (at most {min(n_images, n_features)}): lower it, or set it "
            "to null to use reduction.variance_target."
        )
    scaler = None
    if standardize:
        deviations = np.sqrt(np.diag(covariance))
        # Zero-variance features have no correlation (NaN): they contribute nothing.
        with np.errstate(divide="ignore", invalid="ignore"):
            covariance = np.nan_to_num(covariance / np.outer(deviations, deviations))
        scaler = StandardScaler(
            withMean=True, withStd=True, inputCol=FEATURE_VECTOR, outputCol=_SCALED_VECTOR
        ).fit(to_feature_vectors(image_features))
    eigenvalues, axes = principal_axes(covariance)
    ratios = eigenvalues / eigenvalues.sum()
    chosen_k = k if k is not None else choose_k(ratios, variance_target)
    pca = _pca_model(
        image_features.sparkSession.sparkContext,
        axes[:, :chosen_k],
        ratios[:chosen_k],
        _SCALED_VECTOR if standardize else FEATURE_VECTOR,
    )
    pca_model = PipelineModel(stages=[scaler, pca] if scaler else [pca])
    cumulative = np.cumsum(ratios)
    explained_variance = {
        "k": chosen_k,
        "k_source": "fixed" if k is not None else "variance_target",
        "variance_target": variance_target,
        "variance_at_k": float(cumulative[chosen_k - 1]),
        "standardize": standardize,
        "n_images": n_images,
        "n_features": n_features,
        "explained_variance_ratio": ratios.tolist(),
        "cumulative_explained_variance": cumulative.tolist(),
    }
    return pca_model, explained_variance


def pca_input_digest(image_features: DataFrame) -> str:
    """An order-independent digest of the PCA's input: every (path, features) row."""
    return frame_digest(image_features, ["path", "features"])


def fit_or_reuse_pca(
    image_features: DataFrame,
    standardize: bool,
    variance_target: float,
    k: int | None,
    refit: str,
    previous_pca_model: PipelineModel | None,
    previous_explained_variance: dict[str, Any] | None,
) -> tuple[PipelineModel, dict[str, Any]]:
    """``fit_pca``, unless the last run's PCA was fitted on the same input and settings.

    With ``refit: on_change`` an unchanged input (same digest of paths and features)
    and unchanged settings reuse the previous model and report, so a re-run leaves
    every output identical: a refit would differ in the last bits, because Spark adds
    the distributed partial sums in the order the tasks finish. ``always`` refits.
    """
    check_pca_settings(variance_target, k, refit)
    settings = {"standardize": standardize, "variance_target": variance_target, "k": k}
    digest = pca_input_digest(image_features)
    if reuses_previous(refit, previous_pca_model, previous_explained_variance, digest, settings):
        logger.info("PCA input and settings unchanged: the previous model is reused.")
        return previous_pca_model, previous_explained_variance
    pca_model, explained_variance = fit_pca(image_features, standardize, variance_target, k)
    return pca_model, {**explained_variance, "settings": settings, "input_digest": digest}


def project_features(image_features: DataFrame, pca_model: PipelineModel) -> DataFrame:
    """Project every image's features on the first k principal components.

    Returns:
        ``path``, ``label``, ``split`` and ``pca_features`` (array of k floats).
    """
    projected = pca_model.transform(to_feature_vectors(image_features))
    return projected.select(
        "path",
        "label",
        "split",
        vector_to_array(F.col(PCA_VECTOR), "float32").alias("pca_features"),
    )


def plot_explained_variance(explained_variance: dict[str, Any]) -> Figure:
    """Scree plot: per-component and cumulative explained variance, with k marked."""
    ratios = np.asarray(explained_variance["explained_variance_ratio"])
    cumulative = np.asarray(explained_variance["cumulative_explained_variance"])
    k = explained_variance["k"]
    shown = min(len(ratios), max(2 * k, 50))
    components = np.arange(1, shown + 1)

    figure = Figure(figsize=(9, 5))
    per_component_axis = figure.subplots()
    per_component_axis.bar(components, ratios[:shown], color="tab:blue", alpha=0.6)
    per_component_axis.set_xlabel("principal component")
    per_component_axis.set_ylabel("explained variance ratio", color="tab:blue")
    cumulative_axis = per_component_axis.twinx()
    cumulative_axis.plot(components, cumulative[:shown], color="tab:red")
    cumulative_axis.set_ylim(0, 1.02)
    cumulative_axis.set_ylabel("cumulative explained variance", color="tab:red")
    cumulative_axis.axvline(k, color="black", linestyle="--")
    if explained_variance["k_source"] == "variance_target":
        cumulative_axis.axhline(
            explained_variance["variance_target"], color="grey", linestyle=":", label="target"
        )
    cumulative_axis.annotate(
        f"k = {k} ({explained_variance['variance_at_k']:.1%})",
        xy=(k, explained_variance["variance_at_k"]),
        xytext=(8, -16),
        textcoords="offset points",
    )
    n_images, n_features = explained_variance["n_images"], explained_variance["n_features"]
    per_component_axis.set_title(f"PCA of {n_images} images x {n_features} features")
    figure.tight_layout()
    return figure
