"""What a dataset from `build_dataset` holds, read without decoding pixels: the raw image sizes
(from headers) of a seeded sample, and the number of classes."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset, Subset
from torchvision import datasets as tvd

from solo_equimod.data.images import header_size
from solo_equimod.data.synthetic import SyntheticShapes
from solo_equimod.data.views3d import ObjectViews


def _raw_sizes(dataset: Dataset, indices: list[int]) -> list[tuple[int, int]]:
    """(height, width) of the raw images at ``indices``, without decoding pixels."""
    if isinstance(dataset, Subset):
        return _raw_sizes(dataset.dataset, [int(dataset.indices[i]) for i in indices])
    if isinstance(dataset, SyntheticShapes):
        return [(dataset.image_size, dataset.image_size)] * len(indices)
    if isinstance(dataset, ObjectViews):
        return dataset.raw_sizes(indices)
    if isinstance(dataset, tvd.CIFAR10):  # CIFAR100 too; data is (N, H, W, C)
        return [tuple(dataset.data.shape[1:3])] * len(indices)
    if isinstance(dataset, tvd.STL10):  # data is (N, C, H, W)
        return [tuple(dataset.data.shape[2:4])] * len(indices)
    if isinstance(dataset, tvd.DatasetFolder):
        skip = getattr(dataset, "skip_corrupt", False)
        found = [header_size(dataset.samples[i][0], skip) for i in indices]
        return [(height, width) for width, height in filter(None, found)]
    raise TypeError(
        f"dataset_image_sizes: unsupported dataset type {type(dataset).__name__}; expected one "
        "from build_dataset (SyntheticShapes, CIFAR10/100, STL10, ImageFolder) or a Subset of one"
    )


def dataset_image_sizes(dataset: Dataset, max_items: int = 256, seed: int = 0) -> list[tuple[int, int]]:
    """(height, width) of a seeded random sample of up to ``max_items`` raw images.

    Cheap (image headers only), so augmentation-parameter statistics, which depend on the
    input size (crop boxes are in pixels), can be estimated on the real size distribution.
    """
    count = min(max_items, len(dataset))
    indices = np.random.default_rng(seed).choice(len(dataset), size=count, replace=False)
    return _raw_sizes(dataset, sorted(int(i) for i in indices))


def num_classes_of(dataset: Dataset) -> int:
    """The number of classes of a dataset from ``build_dataset`` (or a Subset of one)."""
    if isinstance(dataset, Subset):
        return num_classes_of(dataset.dataset)
    classes = getattr(dataset, "classes", None)
    if classes is None:
        raise TypeError(f"num_classes_of: {type(dataset).__name__} has no 'classes' attribute")
    return len(classes)
