"""Each dataset's normalisation statistics, class count and image side, by the names the configuration
declares (`config.choices.DATASETS`). Imports no dataset, so the loaders and checks can read it cheaply."""

from __future__ import annotations

from dataclasses import dataclass

SPLITS: tuple[str, ...] = ("train", "val")


@dataclass(frozen=True)
class DatasetInfo:
    """Per-channel normalisation stats, class count (None: read from the folder), image side."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    num_classes: int | None
    image_size: int


_CIFAR_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
_IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# Measured over 4096 SyntheticShapes train images (seed 0, 32 px).
_SYNTHETIC_STATS = ((0.413, 0.412, 0.413), (0.203, 0.203, 0.204))
# Round values near the measured ones (one view of each of the 384 factors3d train objects, seed 0, 32 px:
# mean 0.526 / 0.534 / 0.533, std 0.241 / 0.244 / 0.239).
_FACTORS3D_STATS = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))

DATASET_INFO: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo(*_CIFAR_STATS, num_classes=10, image_size=32),
    "cifar100": DatasetInfo(*_CIFAR_STATS, num_classes=100, image_size=32),
    "stl10": DatasetInfo((0.4914, 0.4823, 0.4466), (0.247, 0.243, 0.261), num_classes=10, image_size=96),
    "imagenet": DatasetInfo(*_IMAGENET_STATS, num_classes=1000, image_size=224),
    "imagenet100": DatasetInfo(*_IMAGENET_STATS, num_classes=100, image_size=224),
    "custom": DatasetInfo(*_IMAGENET_STATS, num_classes=None, image_size=224),
    "synthetic": DatasetInfo(*_SYNTHETIC_STATS, num_classes=10, image_size=32),
    # SIE main.py: Normalize(mean=[0.5016, 0.5037, 0.5060], std=[0.1030, 0.0999, 0.0969]); 55 synsets, 256 px
    "3diebench": DatasetInfo((0.5016, 0.5037, 0.5060), (0.1030, 0.0999, 0.0969), num_classes=None, image_size=256),
    "factors3d": DatasetInfo(*_FACTORS3D_STATS, num_classes=6, image_size=32),
}
