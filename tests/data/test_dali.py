"""The DALI pretraining loader against the torchvision reference, on CPU.

References: `sample_views` (the one sampler, replayed from the loader's seed), `apply_view_params` (re-applying a
returned parameter vector to the decoded file), torchvision's `OriginalView`, the file list itself
(indexes, labels, one visit per epoch). Images are written to a temporary ImageFolder.

Tolerance of the re-application check, in 0..255 levels: the DALI and torchvision antialiased
resizes round differently by at most 1 level (crop + flip alone: max |diff| 1); factors up to 1.4
amplify that level, and on near-gray noisy pixels the HSV hue of a pixel jumps with a 1-level change,
so after a hue shift and saturation a few values differ by up to ~10. Every other operation repeats
torchvision's arithmetic. Measured on these images: mean |diff| <= 0.51 per view, at most 4.2% of a
view's values off by more than 3, max 9. So a view must match with mean |diff| <= 1, at most 6% of
values off by more than 3 and none by more than 24, while views re-made from another sample's
parameters miss by far more (> 10x the mean error).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from solo_equimod.augment.per_image_applier import apply_view_params
from solo_equimod.augment.pipeline import OriginalView, to_uint8_tensor
from solo_equimod.augment.policy import ViewPolicy, layout_for
from solo_equimod.augment.sampler import sample_views

HAVE_DALI = importlib.util.find_spec("nvidia") is not None and importlib.util.find_spec("nvidia.dali") is not None
needs_dali = pytest.mark.skipif(not HAVE_DALI, reason="nvidia-dali is not installed")
# SOLO_EQUIMOD_TEST_DEVICE=cuda runs the loader's GPU path (mixed decoding, GPU operators; benchmarks/gpu_checks.sh)
DALI_DEVICE = "gpu" if os.environ.get("SOLO_EQUIMOD_TEST_DEVICE", "cpu") == "cuda" else "cpu"

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
POLICIES = [
    ViewPolicy(crop_size=32, saturation=0.2, blur_prob=1.0, solarize_prob=0.0),
    ViewPolicy(crop_size=32, saturation=0.2, blur_prob=0.1, solarize_prob=0.2),
]
ORIGINAL = OriginalView(resize=40, center_crop=36)


def _write_folder(root: Path, sizes: list[tuple[int, int]], seed: int) -> Path:
    """2 classes; smooth colour gradients plus noise, alternately JPEG and PNG."""
    rng = np.random.default_rng(seed)
    for k, (h, w) in enumerate(sizes):
        cls = root / f"class_{k % 2}"
        cls.mkdir(parents=True, exist_ok=True)
        yy, xx = np.mgrid[0:h, 0:w]
        hue_shift = rng.random()
        img = np.stack([255 * xx / w, 255 * yy / h, 255 * hue_shift * (xx + yy) / (h + w)], axis=-1)
        img = (img + rng.normal(0, 20, img.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(cls / f"img_{k:02d}.{'png' if k % 4 < 2 else 'jpg'}")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    sizes = [(int(rng.integers(36, 96)), int(rng.integers(36, 96))) for _ in range(16)]
    return _write_folder(tmp_path_factory.mktemp("imagefolder"), sizes, seed=1)


def _build(root: Path, **kwargs):  # type: ignore[no-untyped-def]
    from solo_equimod.data.dali.build import build_dali_pretrain_loader

    args = dict(policies=POLICIES, mean=MEAN, std=STD, original=ORIGINAL, batch_size=5, num_threads=2, drop_last=False,
                device=DALI_DEVICE)
    args.update(kwargs)
    return build_dali_pretrain_loader(str(root), **args)


def _decoded(path: str) -> torch.Tensor:
    return to_uint8_tensor(Image.open(path))


def _levels(normalised: torch.Tensor) -> torch.Tensor:
    normalised = normalised.cpu()
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    return (normalised * std + mean) * 255.0


@needs_dali
def test_batch_format_and_parameter_layout(folder: Path) -> None:
    loader = _build(folder)
    layout = layout_for(POLICIES)
    assert loader.layout == layout and layout.dim == 18  # A.1.1: BYOL-style 18-d vectors
    batch = next(iter(loader))
    index, views, params, original, target = (batch[k] for k in ("index", "views", "params", "original", "target"))
    assert set(batch) == {"index", "views", "params", "image_size", "original", "target", "extras"}
    assert index.dtype == torch.long and target.dtype == torch.long and index.shape == (5,)
    assert [v.shape for v in views] == [(5, 3, 32, 32)] * 2 and original.shape == (5, 3, 36, 36)
    assert [p.shape for p in params] == [(5, 18)] * 2 and params[0].dtype == torch.float32
    for (height, width), i in zip(batch["image_size"].tolist(), index.tolist()):  # each input image's own size
        assert Image.open(loader.files[i]).size == (width, height)
    without = next(iter(_build(folder, with_original=False)))
    assert "original" not in without and set(without) == set(batch) - {"original"}
    with pytest.raises(ValueError, match=r"cannot make the extra inputs \['gray'\].*data.format=image_folder"):
        _build(folder, extras={"gray": lambda image: image})
    names = layout.names
    for vec, path in ((vec, loader.files[i]) for p in params for vec, i in zip(p, index.tolist())):
        value = dict(zip(names, vec.tolist()))
        for flag in names[:5]:
            assert value[flag] in (0.0, 1.0)
        width, height = Image.open(path).size
        assert 0 <= value["crop_x"] and value["crop_x"] + value["crop_width"] <= width
        assert 0 <= value["crop_y"] and value["crop_y"] + value["crop_height"] <= height
        order = [value[f"jitter_order_{k}"] for k in range(1, 5)]
        assert sorted(order) == [0, 1, 2, 3]
        if not value["jitter_applied"]:
            assert order == [0, 1, 2, 3]
            assert [value[f"{op}_factor"] for op in ("brightness", "contrast", "saturation", "hue")] == [1, 1, 1, 0]
        assert (value["blur_sigma"] == 0.0) == (value["blur_applied"] == 0.0)


@needs_dali
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_views_reproduce_when_parameters_are_reapplied(folder: Path, interpolation: str) -> None:
    policies = [dataclasses.replace(p, interpolation=interpolation) for p in POLICIES]
    loader = _build(folder, policies=policies)
    matched, mismatched = [], []
    for _ in range(2):
        for batch in loader:
            index, views, params = batch["index"], batch["views"], batch["params"]
            for b, i in enumerate(index.tolist()):
                image = _decoded(loader.files[i])
                for k, policy in enumerate(policies):
                    got = _levels(views[k][b])
                    ref = apply_view_params(image, loader.layout.decode(params[k][b]), policy).float()
                    diff = (got - ref).abs()
                    assert diff.mean() <= 1.0, (loader.layout.decode(params[k][b]), diff.mean())
                    assert (diff > 3).float().mean() <= 0.06 and diff.max() <= 24, loader.layout.decode(params[k][b])
                    matched.append(diff.mean())
                    other = loader.layout.decode(params[k][(b + 1) % len(index)])
                    mismatched.append((got - apply_view_params(image, other, policy).float()).abs().mean())
    assert torch.stack(mismatched).mean() > 10 * torch.stack(matched).mean()


@needs_dali
def test_original_view_matches_torchvision(folder: Path, tmp_path: Path) -> None:
    loader = _build(folder)
    batch = next(iter(loader))
    index, original = batch["index"], batch["original"]
    for b, i in enumerate(index.tolist()):
        ref = ORIGINAL(_decoded(loader.files[i])).float()
        assert original.dtype == torch.uint8 and (original[b].cpu().float() - ref).abs().mean() <= 1.0
    cifar = _write_folder(tmp_path / "cifar", [(32, 32)] * 4, seed=2)  # CIFAR-size: the image itself
    loader = _build(cifar, original=OriginalView(), batch_size=4)
    batch = next(iter(loader))
    index, original = batch["index"], batch["original"]
    for b, i in enumerate(index.tolist()):
        ref = _decoded(loader.files[i]).float()
        assert torch.allclose(original[b].cpu().float(), ref, atol=0.5 if loader.files[i].endswith(".jpg") else 1e-3)


@needs_dali
def test_parameters_are_the_batch_level_samplers_draws(folder: Path) -> None:
    """The loader returns what `sample_views` draws from the feeder's seed, batch after batch (whose
    law `tests/augment/test_sampler.py` checks against torchvision's samplers)."""
    loader = _build(folder, seed=3)
    generator = torch.Generator().manual_seed(3 * 1_000_003 + 0)  # the feeder's seed for (seed, shard 0)
    batches = 0
    for batch in loader:
        heights, widths = batch["image_size"].cpu().unbind(1)
        for policy, params in zip(POLICIES, batch["params"]):
            expected = loader.layout.encode_batch(sample_views(policy, heights, widths, generator))
            assert torch.allclose(params.cpu(), expected), (params, expected)
        batches += 1
    assert batches == 4


def _epoch(loader) -> tuple[list[int], list[int], list[int]]:  # type: ignore[no-untyped-def]
    indexes, targets, sizes = [], [], []
    for batch in loader:
        indexes += batch["index"].tolist()
        targets += batch["target"].tolist()
        sizes.append(len(batch["index"]))
    return indexes, targets, sizes


@needs_dali
def test_every_file_once_per_epoch_with_real_indexes_and_labels(folder: Path) -> None:
    loader = _build(folder)
    assert loader.dataset_size == 16 and loader.classes == ["class_0", "class_1"] and len(loader) == 4
    orders = []
    for _ in range(2):
        indexes, targets, sizes = _epoch(loader)
        assert sorted(indexes) == list(range(16)) and sizes == [5, 5, 5, 1]
        for i, t in zip(indexes, targets):
            assert loader.classes[t] == Path(loader.files[i]).parent.name
        orders.append(indexes)
    assert orders[0] != orders[1]  # a new permutation each epoch


@needs_dali
def test_abandoned_epoch_is_neither_skipped_nor_doubled(folder: Path) -> None:
    # solo-learn #265: the iterator Lightning gets must start a fresh, complete epoch every time
    loader = _build(folder, drop_last=True, batch_size=4)
    assert len(loader) == 4
    loader.sampler.set_epoch(3)
    first = next(iter(loader))["index"].tolist()
    loader.sampler.set_epoch(3)
    indexes, _, sizes = _epoch(loader)
    assert sizes == [4, 4, 4, 4] and sorted(indexes) == list(range(16)) and indexes[:4] == first
    assert sorted(_epoch(loader)[0]) == list(range(16))


@needs_dali
def test_shards_split_each_epoch_and_drop_last_is_explicit(folder: Path) -> None:
    from solo_equimod.data.epochs import epoch_plan

    shards = [_build(folder, shard_id=r, num_shards=2, batch_size=3, seed=7) for r in range(2)]
    seen = [_epoch(shard) for shard in shards]
    assert sorted(seen[0][0] + seen[1][0]) == list(range(16))  # 16 files, 2 ranks: no padding needed
    assert [s[2] for s in seen] == [[3, 3, 2]] * 2 and all(len(s) == 3 for s in shards)
    plan = epoch_plan(17, epoch=0, seed=0, shard_id=0, num_shards=3, batch_size=4, drop_last=True)
    assert [len(b) for b in plan] == [4]  # 17 files pad to 18 = 3 x 6 per rank; 6 // 4 full batches
    everyone = np.concatenate([np.concatenate(epoch_plan(17, 0, 0, r, 3, 6, False)) for r in range(3)])
    assert set(everyone.tolist()) == set(range(17)) and len(everyone) == 18


@needs_dali
def test_corrupt_files_are_named_or_skipped(folder: Path, tmp_path: Path) -> None:
    from solo_equimod.data.images import CorruptImageError

    root = _write_folder(tmp_path / "bad", [(40, 40)] * 6, seed=3)
    garbage = root / "class_0" / "zz_garbage.jpg"
    garbage.write_bytes(b"this is not an image" * 10)
    with pytest.raises(CorruptImageError, match="zz_garbage.jpg"):
        _epoch(_build(root, batch_size=7))
    with pytest.warns(UserWarning, match="zz_garbage.jpg"):
        indexes, _, _ = _epoch(_build(root, batch_size=7, skip_corrupt=True))
    assert len(indexes) == 6 and len(set(indexes)) == 6
    garbage.unlink()
    good = root / "class_1" / "img_03.jpg"
    truncated = root / "class_1" / "zz_truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])  # valid header, cut body
    with pytest.raises(CorruptImageError, match="zz_truncated.jpg"):
        _epoch(_build(root, batch_size=7))
    with pytest.warns(UserWarning, match="zz_truncated.jpg"):
        indexes, _, _ = _epoch(_build(root, batch_size=3, skip_corrupt=True))
    assert sorted(indexes) == [i for i in range(7) if "truncated" not in _build(root).files[i]]


def test_missing_dali_is_a_clear_install_error(folder: Path) -> None:
    code = (
        "import sys; sys.modules['nvidia.dali'] = None\n"
        "import solo_equimod.data.dali.build as m\n"
        "from solo_equimod.augment.pipeline import OriginalView\n"
        "from solo_equimod.augment.policy import ViewPolicy\n"
        "try:\n"
        f"    m.build_dali_pretrain_loader({str(folder)!r}, [ViewPolicy()] * 2, [0.5] * 3, [0.5] * 3, OriginalView(), 4)\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert 'pip install -e ".[dali]"' in out.stdout, out.stderr
