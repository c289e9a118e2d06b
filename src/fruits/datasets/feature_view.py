"""The image features (or the rejected files): a view of the image table and the feature store."""

from __future__ import annotations

from typing import Any, Literal

from kedro.io import AbstractDataset, DatasetError
from pyspark.sql import DataFrame, SparkSession

from fruits.datasets.filesystems import spark_uri
from fruits.spark import delta, feature_store

_OUTCOMES = ("accepted", "rejected")


class FeatureViewDataset(AbstractDataset[DataFrame, DataFrame]):
    """One row per image file, accepted (with its features) or rejected (with a reason): the
    image table joined with the feature store (``fruits.spark.feature_store.publish``).

    Nothing is written: each content's features live once, in the store, and a run commits
    nothing for the view. Within a run, ``save`` keeps the DataFrame the publishing node
    made, and the next nodes load it; in a new process (a notebook, ``catalog.load``),
    ``load`` builds the same view over the two tables' current versions.

    Example catalog entry::

        image_features:
          type: fruits.datasets.FeatureViewDataset
          images: data/02_intermediate/images
          image_feature_store: data/04_feature/image_feature_store
          outcome: accepted
    """

    def __init__(
        self,
        *,
        images: str,
        image_feature_store: str,
        outcome: Literal["accepted", "rejected"],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if outcome not in _OUTCOMES:
            raise DatasetError(f"FeatureViewDataset: outcome must be one of {_OUTCOMES}.")
        self._images = spark_uri(images)
        self._store = spark_uri(image_feature_store)
        self._outcome = outcome
        self._view: DataFrame | None = None
        self.metadata = metadata

    def load(self) -> DataFrame:
        """The view this run published, else the view of the tables as they are now."""
        if self._view is not None:
            return self._view
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        for path in (self._images, self._store):
            if not delta.is_table(spark, path):
                raise DatasetError(f"{path} is not a Delta table yet: run the pipeline first.")
        images = spark.read.format("delta").load(self._images)
        store = spark.read.format("delta").load(self._store)
        accepted, rejected = feature_store.publish(images, store)
        return accepted if self._outcome == "accepted" else rejected

    def save(self, data: DataFrame) -> None:
        """Keep the run's view for the next nodes (its rows are the two tables')."""
        self._view = data

    def _release(self) -> None:
        self._view = None

    def _exists(self) -> bool:
        spark = SparkSession.getActiveSession()
        return self._view is not None or (
            spark is not None
            and delta.is_table(spark, self._images)
            and delta.is_table(spark, self._store)
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "images": self._images,
            "image_feature_store": self._store,
            "outcome": self._outcome,
        }
