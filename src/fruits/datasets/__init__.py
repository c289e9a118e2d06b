"""Datasets for the two kinds of I/O that kedro-datasets does not cover."""

from fruits.datasets.backbone_weights import BackboneWeightsDataset
from fruits.datasets.spark_ml_model import SparkMLModelDataset

__all__ = ["BackboneWeightsDataset", "SparkMLModelDataset"]
