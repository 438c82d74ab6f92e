"""A CARE model's fixed batch, shared by the CARE and mixed-precision tests."""

from __future__ import annotations

import torch

from solo_equimod.methods import BaseMethod
from tests.helpers.training import fixed_batch

CARE_POLICY = "care"  # scripts/pretrain/cifar/augmentations/care.yaml: crop, flip, jitter, gray, blur


def care_batch(model: BaseMethod, n: int) -> tuple[dict, torch.Tensor]:
    """A fixed batch whose original is known uint8 images, as every loader delivers it."""
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    return fixed_batch(model.cfg, n) | {"original": images}, images
