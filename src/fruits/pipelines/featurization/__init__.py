"""Featurization: images to MobileNetV2 transfer-learning features, inside Spark."""

from fruits.pipelines.featurization.pipeline import create_pipeline

__all__ = ["create_pipeline"]
