"""The batched applier against the per-image torchvision applier on the same parameters.

Reference: `apply_view_params` (torchvision v2 on one uint8 image) with `params.row(b)`, over the
shipped CIFAR SimCLR and BYOL policies and the ImageNet BYOL policy (scripts/pretrain/*/augmentations).

Tolerance, stated before measuring, in 0..255 levels: the resize is the same linear map as torch's
antialiased interpolation and rounds like torchvision's uint8 path, so it may differ by 1 level
(float summation order); every later operation repeats torchvision's uint8 arithmetic, and a 1-level
difference is amplified by at most 1.4 per jitter factor (1.4^4 < 4), while the hue of a near-gray
pixel can jump further. So each view must match with mean |diff| <= 1, at most 1% of its values off
by more than 4, and none by more than 16; and the negative controls (a crop shifted by 2 pixels, the
jitter order reversed) must miss by more than 10x the mean error of the matches.

`SOLO_EQUIMOD_TEST_DEVICE=cuda` runs the applier on the GPU (benchmarks/gpu_checks.sh).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch
import yaml

from solo_equimod.augment.batched_applier import apply_batch
from solo_equimod.augment.params import BatchViewParams
from solo_equimod.augment.per_image_applier import apply_view_params
from solo_equimod.augment.policy import ViewPolicy, policies_from_config
from solo_equimod.augment.sampler import sample_views

DEVICE = torch.device(os.environ.get("SOLO_EQUIMOD_TEST_DEVICE", "cpu"))
CONFIGS = Path(__file__).resolve().parents[2] / "scripts" / "pretrain"
CASES = [  # (config, image height, width, batch size)
    ("cifar/augmentations/simclr.yaml", 32, 32, 64),
    ("cifar/augmentations/byol.yaml", 32, 32, 64),
    ("imagenet/augmentations/byol.yaml", 256, 320, 4),
]


def _policies(config: str) -> list[ViewPolicy]:
    return policies_from_config(yaml.safe_load((CONFIGS / config).read_text()))


def _images(n: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Colour gradients of random strength plus noise: smooth regions, edges and near-gray pixels."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    base = torch.stack([255 * xx / width, 255 * yy / height, 255 * (xx + yy) / (height + width)])[None]
    base = base * torch.rand(n, 3, 1, 1, generator=g) + 60 * torch.rand(n, 3, 1, 1, generator=g)
    return (base + 20 * torch.randn(n, 3, height, width, generator=g)).clamp(0, 255).to(torch.uint8)


def _batched(images: torch.Tensor, params: BatchViewParams, policy: ViewPolicy) -> torch.Tensor:
    views = apply_batch(images.to(DEVICE), params, policy).cpu().float()
    assert views.shape == (len(images), 3, policy.crop_size, policy.crop_size) and views.device.type == "cpu"
    return views


def _per_image(images: torch.Tensor, params: BatchViewParams, policy: ViewPolicy) -> torch.Tensor:
    return torch.stack([apply_view_params(images[b], params.row(b), policy) for b in range(len(images))]).float()


def _shifted(params: BatchViewParams, width: int) -> tuple[torch.Tensor, BatchViewParams]:
    """The rows whose crop can move 2 pixels sideways, and their parameters with it moved."""
    right = params.crop[:, 0] + params.crop[:, 2] + 2 <= width
    rows = (right | (params.crop[:, 0] >= 2)).nonzero()[:, 0]
    crop = params.crop.clone()
    crop[:, 0] += torch.where(right, 2, -2)
    return rows, dataclasses.replace(params, crop=crop).select(rows)


def _swapped(params: BatchViewParams) -> tuple[torch.Tensor, BatchViewParams]:
    """The jittered rows, and their parameters with the jitter order reversed."""
    rows = params.jitter.nonzero()[:, 0]
    return rows, dataclasses.replace(params, order=params.order.flip(1)).select(rows)


@pytest.mark.parametrize("config,height,width,batch", CASES)
def test_views_equal_the_per_image_applier(config: str, height: int, width: int, batch: int) -> None:
    matched, shifted, swapped = [], [], []
    for v, policy in enumerate(_policies(config)):
        images = _images(batch, height, width, seed=v)
        params = sample_views(policy, torch.full((batch,), height), torch.full((batch,), width),
                              torch.Generator().manual_seed(10 + v))
        ref = _per_image(images, params, policy)
        per_view = (_batched(images, params, policy) - ref).abs().flatten(1)
        assert per_view.mean(1).max() <= 1.0, per_view.mean(1).max()
        assert (per_view > 4).float().mean(1).max() <= 0.01 and per_view.max() <= 16, per_view.max()
        matched.append(per_view.mean())
        for controls, (rows, wrong) in ((shifted, _shifted(params, width)), (swapped, _swapped(params))):
            controls.append((_batched(images[rows], wrong, policy) - ref[rows]).abs().mean())
    error = torch.stack(matched).mean()
    assert torch.stack(shifted).mean() > 10 * error and torch.stack(swapped).mean() > 10 * error, (error, shifted, swapped)


def test_every_operation_alone_on_a_hand_made_case() -> None:
    """Each operation of torchvision's, one at a time, on a 2x2 image where its arithmetic is seen."""
    image = torch.tensor([[[10, 200], [120, 250]], [[40, 100], [128, 0]], [[90, 30], [127, 60]]], dtype=torch.uint8)
    policy = ViewPolicy(crop_size=2, blur_prob=1.0, blur_kernel_size=3, solarize_prob=1.0)
    full = torch.tensor([[0, 0, 2, 2]])
    none = {"flip": False, "jitter": False, "gray": False, "blur": False, "solarize": False}
    cases = [dict(flip=True), dict(gray=True), dict(blur=True), dict(solarize=True)]
    cases += [dict(jitter=True, order=torch.tensor([[i, (i + 1) % 4, (i + 2) % 4, (i + 3) % 4]]),
                   factors=torch.tensor([[1.3, 0.6, 1.4, 0.2]])) for i in range(4)]
    for case in cases:
        flags = {k: torch.tensor([v]) for k, v in {**none, **{k: v for k, v in case.items() if k in none}}.items()}
        params = BatchViewParams(crop=full, factors=case.get("factors", torch.tensor([[1.0, 1.0, 1.0, 0.0]])),
                                 order=case.get("order", torch.tensor([[0, 1, 2, 3]])),
                                 sigma=torch.tensor([0.8]), **flags)
        got = apply_batch(image[None].to(DEVICE), params, policy)[0].cpu()
        assert torch.equal(got, apply_view_params(image, params.row(0), policy)), case


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_views_under_autocast_equal_the_views_without(dtype: torch.dtype) -> None:
    """CARE applies views inside the training step, under `16-mixed`'s autocast: a policy with every
    augmentation on (each flag drawn with probability 1, jitter in random orders, solarize at a
    mid threshold) gives exactly the views it gives without autocast, same images and parameters."""
    policy = dataclasses.replace(_policies("imagenet/augmentations/byol.yaml")[1], crop_size=48, flip_prob=1.0,
                                 jitter_prob=1.0, gray_prob=1.0, blur_prob=1.0, solarize_prob=1.0)
    images = _images(8, 64, 80, seed=3).to(DEVICE)
    params = sample_views(policy, torch.full((8,), 64), torch.full((8,), 80), torch.Generator().manual_seed(4))
    assert all(bool(getattr(params, flag).all()) for flag in ("flip", "jitter", "gray", "blur", "solarize"))
    reference = apply_batch(images, params, policy)
    with torch.autocast(DEVICE.type, dtype=dtype):
        mixed = apply_batch(images, params, policy)
    assert mixed.dtype == torch.uint8 and torch.equal(mixed, reference)
    # and the jitter alone (gray after it would hide colour differences), with the same draw
    no_gray = dataclasses.replace(policy, gray_prob=0.0)
    with torch.autocast(DEVICE.type, dtype=dtype):
        mixed = apply_batch(images, params, no_gray)
    assert torch.equal(mixed, apply_batch(images, params, no_gray))
