"""Datasets: SyntheticShapes against independent measurements, build_dataset and its errors."""

from __future__ import annotations

import colorsys
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Subset
from torchvision import datasets as tvd

from solo_equimod.data import (
    CLASS_NAMES,
    DATASET_INFO,
    DATASETS,
    FACTOR_NAMES,
    SyntheticShapes,
    build_dataset,
    dataset_image_sizes,
    num_classes_of,
)
from solo_equimod.errors import ConfigError

CIFAR_SUBSET = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-subset"


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64) / 255.0


def _object_mask(pixels: np.ndarray) -> np.ndarray:
    """The coloured object: the background and the noise are grey (saturation ~0)."""
    high, low = pixels.max(-1), pixels.min(-1)
    return (high - low) / np.maximum(high, 1e-6) > 0.3


# ---------------------------------------------------------------- SyntheticShapes


def test_synthetic_is_deterministic_and_seed_split_dependent():
    a = SyntheticShapes(16, seed=3)
    first = np.asarray(a[7][0])
    assert np.array_equal(first, np.asarray(a[7][0]))
    assert np.array_equal(first, np.asarray(SyntheticShapes(16, seed=3)[7][0]))
    assert a.factors(7) == SyntheticShapes(16, seed=3).factors(7)
    for other in (SyntheticShapes(16, seed=4), SyntheticShapes(16, seed=3, split="val")):
        assert not np.array_equal(first, np.asarray(other[7][0]))
        assert other.factors(7) != a.factors(7)


def test_synthetic_items_and_factor_ranges():
    ds = SyntheticShapes(40, image_size=24, num_classes=7)
    assert len(ds) == 40 and ds.classes == list(CLASS_NAMES[:7])
    for i in range(len(ds)):
        image, label = ds[i]
        f = ds.factors(i)
        assert image.mode == "RGB" and image.size == (24, 24)
        assert tuple(f) == FACTOR_NAMES == SyntheticShapes.FACTOR_NAMES
        assert f["class"] == label == i % 7
        assert 0 <= f["rotation"] < 360 and 0 <= f["hue"] < 1 and 0.5 <= f["scale"] <= 1
        assert 0.35 <= f["x"] <= 0.65 and 0.35 <= f["y"] <= 0.65 and 0.1 <= f["background"] <= 0.7
    with pytest.raises(IndexError, match="out of range"):
        ds[40]


def test_synthetic_labels_are_balanced():
    labels = [SyntheticShapes(2048).factors(i)["class"] for i in range(2048)]
    counts = np.bincount(np.array(labels, dtype=int), minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 2048


def test_synthetic_image_matches_position_hue_scale_background():
    """Measure each factor back from the pixels, with formulas independent of the renderer."""
    size = 32
    ds = SyntheticShapes(200, image_size=size, seed=1)
    bg_true, bg_seen = [], []
    for i in range(len(ds)):
        pixels, f = _pixels(ds[i][0]), ds.factors(i)
        mask = _object_mask(pixels)
        ys, xs = np.nonzero(mask)
        # position: centroid of the object's pixels (pixel i spans [i, i + 1))
        assert abs((xs + 0.5).mean() / size - f["x"]) * size < 0.75
        assert abs((ys + 0.5).mean() / size - f["y"]) * size < 0.75
        # hue: circular mean of the object's pixel hues
        hues = np.array([colorsys.rgb_to_hsv(*p)[0] for p in pixels[mask]])
        mean_hue = np.angle(np.exp(2j * np.pi * hues).mean()) / (2 * np.pi)
        assert abs((mean_hue - f["hue"] + 0.5) % 1 - 0.5) < 0.01
        # scale: every class covers the area of a disc of radius 0.22 * scale * size; the
        # coverage of a pixel is its chroma over the object's (HSV s=0.8, v=0.9: 0.72), as
        # mixing with grey scales the chroma. PIL fills polygon edges inclusively, so thin
        # shapes (stripes) come out up to ~7% larger
        coverage = (pixels.max(-1) - pixels.min(-1)) / 0.72
        radius = math.sqrt(coverage.sum() / math.pi)
        assert radius / (0.22 * size) == pytest.approx(f["scale"], rel=0.08)
        bg_true.append(f["background"])
        bg_seen.append(pixels[~mask].mean())
    # background: mean grey of the non-object pixels, up to the smooth texture
    bg_true, bg_seen = np.array(bg_true), np.array(bg_seen)
    assert np.abs(bg_seen - bg_true).mean() < 0.03
    assert np.corrcoef(bg_true, bg_seen)[0, 1] > 0.95


def test_synthetic_rotation_matches_triangle_vertices():
    """A triangle's vertices sit at 90 + rotation (+120k) degrees around its centroid."""
    size = 64
    ds = SyntheticShapes(300, image_size=size, seed=2)
    triangle = CLASS_NAMES.index("triangle")
    for i in range(triangle, len(ds), 10):
        f = ds.factors(i)
        ys, xs = np.nonzero(_object_mask(_pixels(ds[i][0])))
        dx, dy = xs + 0.5 - f["x"] * size, ys + 0.5 - f["y"] * size
        far = np.argmax(dx**2 + dy**2)
        seen = math.degrees(math.atan2(dy[far], dx[far]))
        error = (seen - (90 + f["rotation"]) + 60) % 120 - 60
        assert abs(error) < 12, (i, seen, f["rotation"])


def _ridge_accuracy(train: torch.Tensor, y_train: torch.Tensor, val: torch.Tensor,
                    y_val: torch.Tensor) -> float:
    """Closed-form ridge regression on one-hot labels: a linear probe without training."""
    mean, std = train.mean(0), train.std(0) + 1e-6
    a = torch.cat([(train - mean) / std, torch.ones(len(train), 1)], 1)
    b = torch.cat([(val - mean) / std, torch.ones(len(val), 1)], 1)
    targets = torch.nn.functional.one_hot(y_train, 10).float()
    weights = torch.linalg.solve(a.T @ a + torch.eye(a.shape[1]), a.T @ targets)
    return (b @ weights).argmax(1).eq(y_val).float().mean().item()


def test_synthetic_classes_need_shape_not_mean_pixel():
    """Random conv features of the saturation map separate classes; the mean pixel does not."""
    def load(split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        ds = SyntheticShapes(n, split=split)
        x = torch.stack([torch.from_numpy(_pixels(ds[i][0])).permute(2, 0, 1) for i in range(n)])
        return x.float(), torch.arange(n) % 10

    x_train, y_train = load("train", 600)
    x_val, y_val = load("val", 300)
    mean_acc = _ridge_accuracy(x_train.mean((2, 3)), y_train, x_val.mean((2, 3)), y_val)

    def saturation(x: torch.Tensor) -> torch.Tensor:
        high, low = x.max(1, keepdim=True).values, x.min(1, keepdim=True).values
        return (high - low) / high.clamp_min(1e-3)

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    )
    with torch.no_grad():
        conv_acc = _ridge_accuracy(net(saturation(x_train)), y_train, net(saturation(x_val)), y_val)
    assert mean_acc < 0.2  # chance is 0.1
    assert conv_acc > 0.6


def test_synthetic_transform_and_bad_arguments():
    ds = SyntheticShapes(4, transform=lambda image: np.asarray(image).shape)
    assert ds[0] == ((32, 32, 3), 0)
    assert np.array_equal(np.asarray(ds.render(1)[0]), np.asarray(SyntheticShapes(4)[1][0]))
    with pytest.raises(ValueError, match="num_classes must be in 1..10, got 11"):
        SyntheticShapes(4, num_classes=11)
    with pytest.raises(ValueError, match="split must be one of .*'tran'"):
        SyntheticShapes(4, split="tran")


# ---------------------------------------------------------------- registry and synthetic


def test_dataset_registry():
    assert DATASETS == ("cifar10", "cifar100", "stl10", "imagenet", "imagenet100", "custom", "synthetic", "3diebench",
                        "factors3d")
    assert DATASET_INFO["3diebench"].std == (0.1030, 0.0999, 0.0969)  # SIE main.py
    assert set(DATASET_INFO) == set(DATASETS)
    assert DATASET_INFO["cifar100"].mean == (0.4914, 0.4822, 0.4465)
    assert DATASET_INFO["cifar10"].std == (0.2470, 0.2435, 0.2616)
    assert DATASET_INFO["stl10"].std == (0.247, 0.243, 0.261)
    assert DATASET_INFO["imagenet100"].mean == (0.485, 0.456, 0.406)
    assert DATASET_INFO["custom"].num_classes is None
    assert DATASET_INFO["cifar100"].num_classes == 100 and DATASET_INFO["synthetic"].image_size == 32
    with pytest.raises(dataclasses.FrozenInstanceError):
        DATASET_INFO["cifar10"].num_classes = 3


def test_synthetic_info_stats_match_measured_pixels():
    ds = build_dataset("synthetic", None, "train", synthetic_size=512)
    pixels = np.stack([_pixels(ds[i][0]) for i in range(len(ds))])
    info = DATASET_INFO["synthetic"]
    np.testing.assert_allclose(pixels.mean((0, 1, 2)), info.mean, atol=0.01)
    np.testing.assert_allclose(pixels.std((0, 1, 2)), info.std, atol=0.01)


def test_build_synthetic():
    train, val = build_dataset("synthetic", None, "train"), build_dataset("synthetic", "/x", "val")
    assert (len(train), len(val)) == (2048, 512)
    assert not np.array_equal(np.asarray(train[0][0]), np.asarray(val[0][0]))
    small = build_dataset("synthetic", None, "val", transform=lambda im: im.size, synthetic_size=10)
    assert len(small) == 10 and small[3] == ((32, 32), 3)
    assert num_classes_of(small) == 10 and num_classes_of(Subset(small, [0, 1])) == 10
    assert dataset_image_sizes(small) == [(32, 32)] * 10
    assert dataset_image_sizes(train, max_items=5) == [(32, 32)] * 5


# ---------------------------------------------------------------- image folders


@pytest.fixture
def image_folder(tmp_path: Path) -> tuple[Path, dict[str, tuple[str, tuple[int, int]]]]:
    """root/<class>/<n>.png of varied sizes and modes; returns root and file -> (class, (h, w))."""
    root = tmp_path / "train"
    written = {}
    rng = np.random.default_rng(0)
    for c, name in enumerate(("ant", "bee", "cat")):
        (root / name).mkdir(parents=True)
        for k in range(3):
            h, w = 8 + 3 * c + k, 10 + 2 * k
            mode = "L" if k == 0 else "RGB"
            shape = (h, w) if mode == "L" else (h, w, 3)
            path = root / name / f"{k}.png"
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
            written[str(path)] = (name, (h, w))
    return root, written


def test_custom_image_folder(image_folder):
    root, written = image_folder
    ds = build_dataset("custom", str(root), "train")
    assert len(ds) == 9 and num_classes_of(ds) == 3
    for i, (path, target) in enumerate(ds.samples):
        image, label = ds[i]
        name, (h, w) = written[path]
        assert label == target and ds.classes[label] == name == Path(path).parent.name
        assert image.mode == "RGB" and image.size == (w, h)
    sizes = sorted(size for _, size in written.values())
    assert sorted(dataset_image_sizes(ds)) == sizes
    sample = dataset_image_sizes(ds, max_items=4, seed=1)
    assert len(sample) == 4 and set(sample) <= set(sizes)
    assert sample == dataset_image_sizes(ds, max_items=4, seed=1)
    subset = Subset(ds, [8, 0])
    assert sorted(dataset_image_sizes(subset)) == sorted(written[ds.samples[i][0]][1] for i in (8, 0))
    with_transform = build_dataset("imagenet100", str(root), "val", transform=lambda im: im.size)
    assert with_transform[0][0] == ds[0][0].size


@pytest.mark.skipif(not CIFAR_SUBSET.is_dir(), reason=f"no shared data at {CIFAR_SUBSET}")
def test_custom_on_shared_cifar10_subset():
    ds = build_dataset("custom", str(CIFAR_SUBSET / "train"), "train")
    assert len(ds) == 5085 and num_classes_of(ds) == 10
    assert "airplane" in ds.classes and "truck" in ds.classes
    image, label = ds[0]
    assert image.mode == "RGB" and ds.classes[label] == Path(ds.samples[0][0]).parent.name
    assert set(dataset_image_sizes(ds, max_items=64)) == {(32, 32)}
    val = build_dataset("custom", str(CIFAR_SUBSET / "val"), "val")
    assert val.classes == ds.classes


def test_torchvision_sizes_without_files():
    cifar = tvd.CIFAR100.__new__(tvd.CIFAR100)
    cifar.data = np.zeros((5, 32, 32, 3), np.uint8)
    stl = tvd.STL10.__new__(tvd.STL10)
    stl.data = np.zeros((5, 3, 96, 96), np.uint8)
    assert dataset_image_sizes(cifar, max_items=3) == [(32, 32)] * 3
    assert dataset_image_sizes(stl) == [(96, 96)] * 5


# ---------------------------------------------------------------- errors


def test_unknown_name_and_split():
    with pytest.raises(ValueError, match="unknown dataset 'cifar11'.*cifar10, cifar100, .*synthetic"):
        build_dataset("cifar11", "/tmp", "train")
    with pytest.raises(ValueError, match="'cifar10': unknown split 'test'.*train, val"):
        build_dataset("cifar10", "/tmp", "test")


def test_missing_or_bad_roots(tmp_path: Path, image_folder):
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="'custom'.*set data.train_path"):
        build_dataset("custom", None, "train")
    with pytest.raises(ConfigError, match=f"'imagenet'.*data.val_path={missing} does not exist"):
        build_dataset("imagenet", str(missing), "val")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match=f"'custom'.*{a_file} is not a directory"):
        build_dataset("custom", str(a_file), "train")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=f"'custom'.*{empty} has no class folders"):
        build_dataset("custom", str(empty), "train")
    root, _ = image_folder
    (root / "dog").mkdir()
    (root / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(ConfigError, match=f"'custom'.*{root} has class folders without images.*png"):
        build_dataset("custom", str(root), "train")


@pytest.mark.parametrize("name, folder", [("cifar10", "cifar-10-batches-py"),
                                          ("cifar100", "cifar-100-python"),
                                          ("stl10", "stl10_binary")])
def test_torchvision_not_found_without_download(tmp_path: Path, name: str, folder: str):
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match=f"'{name}'.*{missing} does not exist; "
                                                 f"set data.download=true or point data.train_path"):
        build_dataset(name, str(missing), "train")
    with pytest.raises(ConfigError, match=f"'{name}': not found or corrupted under {tmp_path}"
                                                 f".*{folder}.*set data.download=true.*data.val_path"):
        build_dataset(name, str(tmp_path), "val")


def test_helpers_reject_unknown_types():
    with pytest.raises(TypeError, match="unsupported dataset type list"):
        dataset_image_sizes([1, 2, 3])
    with pytest.raises(TypeError, match="list has no 'classes'"):
        num_classes_of([1, 2, 3])


def test_failed_download_names_the_path(tmp_path: Path, monkeypatch):
    import urllib.error

    import torchvision.datasets.cifar as tv_cifar

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    target = tmp_path / "cifar"
    with pytest.raises(ConfigError) as caught:
        build_dataset("cifar10", str(target), "train", download=True)
    assert str(caught.value) == (
        f"dataset 'cifar10': could not download into {target} (<urlopen error no network>); offline, point the "
        f"config at a local copy with data.train_path=DIR data.val_path=DIR data.download=false (DIR holding "
        f"cifar-10-batches-py/), or use the built-in synthetic data with data.dataset=synthetic")
