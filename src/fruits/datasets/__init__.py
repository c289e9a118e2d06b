"""Datasets for the kinds of I/O that kedro-datasets does not cover."""

from fruits.datasets.backbone_weights import BackboneWeightsDataset
from fruits.datasets.image_files import ImageFilesDataset
from fruits.datasets.portable_backbone import PortableBackboneDataset
from fruits.datasets.previous_output import PreviousOutputDataset
from fruits.datasets.spark_ml_model import SparkMLModelDataset
from fruits.datasets.spark_snapshot import SparkSnapshotDataset

__all__ = [
    "BackboneWeightsDataset",
    "ImageFilesDataset",
    "PortableBackboneDataset",
    "PreviousOutputDataset",
    "SparkMLModelDataset",
    "SparkSnapshotDataset",
]
