"""Datasets by name (torchvision sets, image folders, built-in SyntheticShapes).

Kept light: nothing here imports DALI; loaders live in their own modules.
"""

from solo_equimod.config.choices import DATASETS
from solo_equimod.data.dataset_info import DATASET_INFO, DatasetInfo
from solo_equimod.data.datasets import build_dataset
from solo_equimod.data.describe import dataset_image_sizes, num_classes_of
from solo_equimod.data.synthetic import CLASS_NAMES, FACTOR_NAMES, SyntheticShapes

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "DATASET_INFO",
    "DatasetInfo",
    "FACTOR_NAMES",
    "SyntheticShapes",
    "build_dataset",
    "dataset_image_sizes",
    "num_classes_of",
]
