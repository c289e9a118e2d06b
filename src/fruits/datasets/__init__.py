"""Datasets for the kinds of I/O that kedro-datasets does not cover."""

from fruits.datasets.backbone_weights import BackboneWeightsDataset
from fruits.datasets.delta_table import DeltaMergeDataset
from fruits.datasets.delta_versions import DeltaVersionsDataset
from fruits.datasets.feature_view import FeatureViewDataset
from fruits.datasets.figure import FigureDataset
from fruits.datasets.image_files import ImageFilesDataset
from fruits.datasets.portable_backbone import PortableBackboneDataset
from fruits.datasets.previous_output import PreviousOutputDataset
from fruits.datasets.run_lock import RunLockDataset
from fruits.datasets.spark_ml_model import SparkMLModelDataset

__all__ = [
    "BackboneWeightsDataset",
    "DeltaMergeDataset",
    "DeltaVersionsDataset",
    "FeatureViewDataset",
    "FigureDataset",
    "ImageFilesDataset",
    "PortableBackboneDataset",
    "PreviousOutputDataset",
    "RunLockDataset",
    "SparkMLModelDataset",
]
