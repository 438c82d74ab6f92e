"""Images are read as they are or refused, the same in every loader: 8-bit files of every mode
give the hand-computed RGB values in the torchvision and the DALI loader; 16-bit files and corrupt
files are refused by name in both, or skipped with `data.skip_corrupt` (EquiMod's size scan too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from solo_equimod.augment import OriginalView, ViewPolicy
from solo_equimod.data.images import CheckedImageFolder, CorruptImageError
from solo_equimod.run.training import pretrain
from tests.conftest import tiny_pretrain_cfg, write_image_folder

SIDE = 16
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (SIDE, SIDE), dtype=np.uint8)
PALETTE = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
INDEX = RNG.integers(0, 256, (SIDE, SIDE), dtype=np.uint8)


def _palette_image(transparency: bool) -> Image.Image:
    image = Image.fromarray(INDEX, "L").convert("P")
    image.putpalette(PALETTE.flatten().tolist())
    if transparency:
        image.info["transparency"] = 0
    return image


# name -> (image to save, the RGB values every loader must give, computed from the source arrays)
CASES = {
    "rgb.png": (Image.fromarray(RGB), RGB),
    "rgba.png": (Image.fromarray(np.dstack([RGB, GRAY]), "RGBA"), RGB),  # alpha dropped
    "gray.png": (Image.fromarray(GRAY, "L"), np.repeat(GRAY[..., None], 3, 2)),
    "gray_alpha.png": (Image.fromarray(np.dstack([GRAY, RGB[..., 0]]), "LA"), np.repeat(GRAY[..., None], 3, 2)),
    "bilevel.png": (Image.fromarray(GRAY > 127), np.repeat(np.where(GRAY > 127, 255, 0)[..., None], 3, 2)),
    "palette.png": (_palette_image(False), PALETTE[INDEX]),
    "palette_trns.png": (_palette_image(True), PALETTE[INDEX]),
}


@pytest.fixture
def modes(tmp_path: Path) -> Path:
    (tmp_path / "a").mkdir()
    for name, (image, _) in CASES.items():
        image.save(tmp_path / "a" / name)
    return tmp_path


def _write_16bit(path: Path) -> Path:
    Image.fromarray(GRAY.astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode == "I;16"
    return path


def test_torchvision_loader_gives_the_expected_values(modes: Path) -> None:
    dataset = CheckedImageFolder(str(modes))
    for i, (path, _) in enumerate(dataset.samples):
        assert np.array_equal(np.asarray(dataset[i][0]), CASES[Path(path).name][1]), path


def _dali_originals(root: Path, **kwargs: object) -> dict[str, np.ndarray]:
    pytest.importorskip("nvidia.dali")
    from solo_equimod.data.dali.build import build_dali_pretrain_loader

    loader = build_dali_pretrain_loader(str(root), [ViewPolicy(crop_size=SIDE)] * 2, [0.0] * 3, [1.0] * 3,
                                        OriginalView(), batch_size=len(CASES), drop_last=False, **kwargs)
    out = {}
    for batch in loader:
        for b, i in enumerate(batch["index"].tolist()):
            out[Path(loader.files[i]).name] = batch["original"][b].permute(1, 2, 0).numpy()
    return out


def test_dali_loader_gives_the_same_values(modes: Path) -> None:
    got = _dali_originals(modes)
    assert sorted(got) == sorted(CASES)
    for name, (_, expected) in CASES.items():
        assert np.array_equal(got[name], expected), name


def test_jpeg_modes_agree_between_loaders(tmp_path: Path) -> None:
    """CMYK and grayscale JPEGs: no hand-computed value (lossy), so PIL and DALI's decoder, two
    independent implementations, must agree exactly."""
    (tmp_path / "a").mkdir()
    Image.fromarray(RGB).convert("CMYK").save(tmp_path / "a" / "cmyk.jpg")
    Image.fromarray(GRAY, "L").save(tmp_path / "a" / "gray.jpg")
    Image.fromarray(RGB).save(tmp_path / "a" / "rgb.jpg")
    dataset = CheckedImageFolder(str(tmp_path))
    got = _dali_originals(tmp_path)
    for i, (path, _) in enumerate(dataset.samples):
        assert np.array_equal(got[Path(path).name], np.asarray(dataset[i][0])), path


def test_16_bit_and_corrupt_files_are_refused_by_name_in_both_loaders(modes: Path) -> None:
    deep = _write_16bit(modes / "a" / "zz_deep.png")
    with pytest.raises(CorruptImageError, match=r"zz_deep.png.*mode 'I;16' \(16-bit\) is not supported"):
        CheckedImageFolder(str(modes))[len(CASES)]
    with pytest.raises(CorruptImageError, match=r"zz_deep.png.*mode 'I;16'"):
        _dali_originals(modes)
    deep.unlink()
    (modes / "a" / "zz_garbage.png").write_bytes(b"not an image" * 20)
    with pytest.raises(CorruptImageError, match=r"zz_garbage.png.*not a readable image.*data.skip_corrupt=true"):
        CheckedImageFolder(str(modes))[len(CASES)]
    with pytest.raises(CorruptImageError, match=r"zz_garbage.png"):
        _dali_originals(modes)
    with pytest.warns(UserWarning, match="zz_garbage.png"):
        assert sorted(_dali_originals(modes, skip_corrupt=True)) == sorted(CASES)
    with pytest.warns(UserWarning, match="zz_garbage.png"):  # replaced by the next readable file
        image, target = CheckedImageFolder(str(modes), skip_corrupt=True)[len(CASES)]
    assert np.array_equal(np.asarray(image), CASES["bilevel.png"][1])  # sorted order wraps to the first file


@pytest.mark.parametrize("method", ["simclr", "simclr_equimod"])
def test_skip_corrupt_in_pretraining_for_every_method(tmp_path: Path, method: str) -> None:
    train = write_image_folder(tmp_path / "train", classes=2, per_class=10)
    (train / "c1" / "zz_bad.png").write_bytes(b"garbage" * 30)
    overrides = {"data.dataset": "custom", "data.train_path": str(train), "limit_train_batches": 1,
                 "limit_val_batches": 0, "data.original.resize": 32, "data.original.center_crop": 32}
    if method.endswith("_equimod"):
        overrides["objectives.equimod.param_stats_samples"] = 100
    cfg = tiny_pretrain_cfg(method, tmp_path, **overrides)
    with pytest.raises(CorruptImageError, match=r"zz_bad.png"):  # found by the size scan, before any write
        pretrain(cfg)
    assert not (tmp_path / "ckpt").exists()
    cfg.data.skip_corrupt = True
    with pytest.warns(UserWarning, match=r"data.skip_corrupt: skipping image file .*zz_bad.png"):
        last = pretrain(cfg)
    assert torch.load(last, weights_only=True)["global_step"] == 1
