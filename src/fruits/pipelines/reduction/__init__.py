"""Reduction: PCA of the image features with pyspark.ml."""

from fruits.pipelines.reduction.pipeline import create_pipeline

__all__ = ["create_pipeline"]
