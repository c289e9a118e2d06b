"""Classification: a Spark ML fruit classifier on the PCA features, and its evaluation."""

from fruits.pipelines.classification.pipeline import create_pipeline

__all__ = ["create_pipeline"]
