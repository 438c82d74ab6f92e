"""Classification datasets by name: torchvision sets, image folders and SyntheticShapes.

``build_dataset`` is the one place that turns ``data.dataset`` / ``data.train_path`` /
``data.val_path`` into a ``Dataset`` of ``(transform(PIL RGB image), int target)``, and
turns every way that can go wrong into an error naming the dataset, the path and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset
from torchvision import datasets as tvd
from torchvision.datasets.folder import IMG_EXTENSIONS

from solo_equimod.config.choices import DATASETS
from solo_equimod.data.dataset_info import DATASET_INFO, SPLITS
from solo_equimod.data.factors3d import Factors3D
from solo_equimod.data.images import CheckedImageFolder
from solo_equimod.data.synthetic import SyntheticShapes
from solo_equimod.data.views3d import FolderObjects
from solo_equimod.errors import ConfigError

SYNTHETIC_SIZES: dict[str, int] = {"train": 2048, "val": 512}
_TORCHVISION = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "stl10": tvd.STL10}


def _path_key(split: str) -> str:
    return f"data.{split}_path"


def _check_root(name: str, root: str | None, split: str, must_exist: bool) -> Path:
    """``root`` as a Path, or a clear error if it is unset, missing, or a file."""
    key = _path_key(split)
    if root is None:
        raise ConfigError(f"dataset {name!r}: no path given for split {split!r}; set {key}")
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"dataset {name!r}: {key}={path} is not a directory")
    if must_exist and not path.exists():
        hint = (
            f"set data.download=true or point {key} at the folder that holds "
            f"{_TORCHVISION[name].base_folder}/" if name in _TORCHVISION
            else f"point {key} at the {split} split folder (one sub-folder of images per class)"
        )
        raise ConfigError(f"dataset {name!r}: {key}={path} does not exist; {hint}")
    return path


def _build_torchvision(name: str, root: Path, split: str, transform: Callable | None,
                       download: bool) -> Dataset:
    cls = _TORCHVISION[name]
    split_kwargs = {"split": "train" if split == "train" else "test"} if name == "stl10" \
        else {"train": split == "train"}
    try:
        return cls(str(root), transform=transform, download=download, **split_kwargs)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted."
        raise ConfigError(
            f"dataset {name!r}: not found or corrupted under {root} (expected "
            f"{root / cls.base_folder}); set data.download=true or point {_path_key(split)} at "
            f"the folder that holds {cls.base_folder}/ [torchvision: {err}]"
        ) from err
    except OSError as err:  # a failed download: no network, disk full, ...
        if not download:
            raise
        raise ConfigError(
            f"dataset {name!r}: could not download into {root} ({err}); offline, point the config at a local copy "
            f"with data.train_path=DIR data.val_path=DIR data.download=false (DIR holding {cls.base_folder}/), or "
            f"use the built-in synthetic data with data.dataset=synthetic"
        ) from None


def _build_folder(name: str, root: Path, split: str, transform: Callable | None, skip_corrupt: bool) -> Dataset:
    key = _path_key(split)
    if not any(child.is_dir() for child in root.iterdir()):
        raise ConfigError(
            f"dataset {name!r}: {key}={root} has no class folders; expected "
            f"{root}/<class name>/<image file>, e.g. {key}=/data/imagenet/{split}"
        )
    try:
        return CheckedImageFolder(str(root), transform=transform, skip_corrupt=skip_corrupt)
    except FileNotFoundError as err:  # torchvision: a class folder without images
        raise ConfigError(
            f"dataset {name!r}: {key}={root} has class folders without images; every class "
            f"folder needs files ending in one of {', '.join(IMG_EXTENSIONS)} [torchvision: {err}]"
        ) from err


def build_dataset(name: str, root: str | None, split: str, transform: Callable | None = None,
                  download: bool = False, synthetic_size: int | None = None, skip_corrupt: bool = False) -> Dataset:
    """The ``split`` ("train" or "val") of dataset ``name``, yielding ``(transform(img), target)``.

    cifar10/cifar100/stl10 come from torchvision (downloaded into ``root`` only if
    ``download``; stl10 uses its labelled 'train' and 'test' folds). imagenet, imagenet100 and
    custom are ``ImageFolder``s on ``root``, which is the split folder itself, read as 8-bit RGB or
    refused by file name (``solo_equimod.data.images``; ``skip_corrupt`` skips such files with a
    warning). 3diebench reads 3DIEBench's layout under ``root`` (``data/views3d.py``), factors3d
    renders its stand-in on the fly (``synthetic_size`` training objects). synthetic is a
    ``SyntheticShapes`` of ``synthetic_size`` images (default 2048 train / 512 val, 32 px)
    and ignores ``root``.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (data.dataset); valid names: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"dataset {name!r}: unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if name == "synthetic":
        size = SYNTHETIC_SIZES[split] if synthetic_size is None else synthetic_size
        return SyntheticShapes(size, image_size=DATASET_INFO[name].image_size, split=split,
                               transform=transform)
    if name == "factors3d":
        return Factors3D(split, objects=synthetic_size if split == "train" else None, transform=transform)
    if name == "3diebench":
        return FolderObjects(_check_root(name, root, split, must_exist=True), split, transform=transform,
                             skip_corrupt=skip_corrupt)
    if name in _TORCHVISION:
        path = _check_root(name, root, split, must_exist=not download)
        return _build_torchvision(name, path, split, transform, download)
    path = _check_root(name, root, split, must_exist=True)
    return _build_folder(name, path, split, transform, skip_corrupt)
