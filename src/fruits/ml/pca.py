"""PCA of the image features: the covariance reduced in Spark, decomposed on the driver.

The fitted model is a genuine Spark ML ``PipelineModel`` (optionally a
``StandardScaler``, then a ``PCAModel``): ``transform``, ``save`` and ``load`` work as
for any Spark ML model, and ``fruits.ml.local_models`` applies it with NumPy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark import SparkContext
from pyspark.ml import PipelineModel
from pyspark.ml.feature import PCAModel, StandardScaler
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits.errors import FruitsInputError
from fruits.ml.spark_models import java_pca_model
from fruits.spark import delta
from fruits.spark.frames import path_rows

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
    """A genuine Spark ML ``PCAModel`` (transform, save, load) holding the given axes."""
    uid = spark_context._jvm.org.apache.spark.ml.util.Identifiable.randomUID("pca")
    pca = PCAModel(java_pca_model(spark_context, uid, axes, ratios))
    pca._set(k=axes.shape[1], inputCol=input_col, outputCol=PCA_VECTOR)
    return pca


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
    n_images, _, covariance = feature_moments(image_features)
    n_features = covariance.shape[0]
    if n_images < 2:  # noqa: PLR2004 - no variance in fewer
        raise FruitsInputError(
            f"The PCA needs at least 2 images; there is {n_images}: add images to the "
            "raw image folder (raw_images_path)."
        )
    if not np.trace(covariance) > 0:
        raise FruitsInputError(
            f"The {n_images} images have identical features (copies of one photo?): the PCA "
            "has no variance to keep; add different images."
        )
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


@dataclass(frozen=True)
class ProjectionChanges:
    """How the image rows compare with the projected ones (``pca_features``), path by path.

    Counted by one query of keys (``compare_with_projection``): the PCA's refit policy reads
    ``rows_changed`` from it, and ``project_features`` the kinds of its changes (``held``),
    so the projection's changes are not looked up in the table a second time.
    """

    fit: str  # the fit of the rows counted ``unchanged``
    added: int  # paths not projected
    replaced: int  # paths projected with other bytes or another backbone
    removed: int  # projected paths no longer among the images
    unchanged: int  # the same image, projected with ``fit``
    other_fit: int  # the same image, projected with another fit
    # The paths added, replaced and removed (as many as the changes): the projection reads
    # the images by them, not the projected table again.
    added_paths: list[str] = field(default_factory=list)
    replaced_paths: list[str] = field(default_factory=list)
    removed_paths: list[str] = field(default_factory=list)

    @property
    def rows_changed(self) -> int:
        """Rows added, changed or removed; a changed row counts once added, once removed."""
        return self.added + 2 * self.replaced + self.removed

    def held(self, fit: str) -> dict[str, int]:
        """``delta.CountedChanges.held`` of ``project_features``' changes with ``fit``:
        the images to project (all of them with a new fit), and the removed paths."""
        reprojected = self.other_fit + (0 if fit == self.fit else self.unchanged)
        held = {}
        if self.added + self.replaced + reprojected:
            held[delta.UPSERT] = self.replaced + reprojected
        if self.removed:
            held[delta.DELETE] = self.removed
        return held


def compare_with_projection(
    image_features: DataFrame, previous_pca_features: DataFrame, fit: str
) -> ProjectionChanges:
    """Count how ``image_features`` compare with ``previous_pca_features`` (projected with
    ``fit`` or not), with the paths of the rows added, replaced and removed: one full outer
    join of keys (``path``, ``content_hash``, ``backbone``)."""
    identity = F.struct("content_hash", "backbone")
    current = image_features.select("path", identity.alias("_current"))
    projected = previous_pca_features.select(
        "path", identity.alias("_projected"), (F.col("pca_fit") == fit).alias("_same_fit")
    )
    kind = (
        F.when(F.col("_projected").isNull(), "added")
        .when(F.col("_current").isNull(), "removed")
        .when(~F.col("_current").eqNullSafe(F.col("_projected")), "replaced")
        .when(F.col("_same_fit"), "unchanged")
        .otherwise("other_fit")
    )
    joined = current.join(projected, "path", "full_outer").select("path", kind.alias("kind"))
    listed = F.col("kind").isin("added", "replaced", "removed")
    by_kind = {
        row["kind"]: row
        for row in joined.groupBy("kind")
        .agg(
            F.count("*").alias("count"),
            F.collect_list(F.when(listed, F.col("path"))).alias("paths"),
        )
        .collect()
    }
    kinds = ("added", "replaced", "removed", "unchanged", "other_fit")
    counts = {name: by_kind[name]["count"] if name in by_kind else 0 for name in kinds}
    paths = {
        f"{name}_paths": sorted(by_kind[name]["paths"]) if name in by_kind else []
        for name in ("added", "replaced", "removed")
    }
    return ProjectionChanges(fit, **counts, **paths)


def project(image_features: DataFrame, pca_model: PipelineModel) -> DataFrame:
    """Every image's features on the first k principal components.

    Returns:
        ``path``, ``label``, ``split`` (and ``content_hash``, ``backbone`` when given) and
        ``pca_features`` (array of k floats).
    """
    kept = [
        name
        for name in ("path", "label", "split", "content_hash", "backbone")
        if name in image_features.columns
    ]
    return pca_model.transform(to_feature_vectors(image_features)).select(
        *kept, vector_to_array(F.col(PCA_VECTOR), "float32").alias("pca_features")
    )


def project_features(
    image_features: DataFrame,
    pca_model: PipelineModel,
    fit: str,
    previous_pca_features: DataFrame | None,
    projection_changes: ProjectionChanges | None = None,
) -> delta.TableChanges:
    """The changes of ``pca_features``: images projected on the first k components.

    With the same fit as the rows already there (``fit``, recorded in each row's
    ``pca_fit``), only images not yet projected are; with another fit, every image is.
    Nothing is computed when the features and the fit are those of the last projection.
    Given ``projection_changes`` (the same two tables compared already), the images to
    project and the paths to delete are its paths, and the projected table is not read
    again; without it (or when rows of another fit remain under the same fit, after a run
    killed between the model's save and the projection's), they come from queries of both.

    Returns:
        Changes keyed by ``path``: rows ``path``, ``label``, ``split``, ``content_hash``,
        ``backbone``, ``pca_features`` (k floats), ``pca_fit``.
    """
    identity = ["path", "content_hash", "backbone"]

    def rows() -> DataFrame | delta.CountedChanges:
        if projection_changes is not None and not (
            fit == projection_changes.fit and projection_changes.other_fit
        ):
            return _changes_from_keys(image_features, pca_model, fit, projection_changes)
        to_project = image_features
        if previous_pca_features is not None:
            same_fit = previous_pca_features.where(F.col("pca_fit") == fit).select(*identity)
            to_project = image_features.join(same_fit, identity, "left_anti")
        projected = _projected(to_project, pca_model, fit)
        if previous_pca_features is None:
            return projected
        gone = previous_pca_features.select("path").join(
            image_features.select("path"), "path", "left_anti"
        )
        changes = projected.unionByName(delta.deletes(gone, projected))
        return delta.CountedChanges(
            changes, delta.count_held(changes, previous_pca_features, ["path"])
        )

    sources = {"image_features": delta.table_digest(image_features), "pca_fit": fit}
    return delta.TableChanges(rows=rows, sources=sources)


def _projected(image_features: DataFrame, pca_model: PipelineModel, fit: str) -> DataFrame:
    return delta.upserts(project(image_features, pca_model).withColumn("pca_fit", F.lit(fit)))


def _changes_from_keys(
    image_features: DataFrame,
    pca_model: PipelineModel,
    fit: str,
    projection_changes: ProjectionChanges,
) -> delta.CountedChanges:
    """The changes ``projection_changes`` found: the images added or replaced projected (all
    of them with another fit), the removed paths deleted. The projected table is not read."""
    spark = image_features.sparkSession
    held = projection_changes.held(fit)
    to_project = image_features
    if fit == projection_changes.fit:  # the rows projected with it stay
        changed = projection_changes.added_paths + projection_changes.replaced_paths
        to_project = image_features.join(path_rows(spark, changed), "path", "left_semi")
    projected = _projected(to_project, pca_model, fit)
    if delta.DELETE not in held:
        return delta.CountedChanges(projected, held)
    removed = delta.deletes(path_rows(spark, projection_changes.removed_paths), projected)
    changes = projected.unionByName(removed) if delta.UPSERT in held else removed
    return delta.CountedChanges(changes, held)
