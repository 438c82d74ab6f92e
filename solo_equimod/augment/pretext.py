"""The transformations of "predict which transformation was applied" pretext tasks: E-SSL's four-fold
rotation (Dangovski et al., 2021, rdangovs/essl cifar10/main.py `rotate_images`) and the ESSL-2024
tasks (kaotty/Understanding-ESSL, ESSL/equivariant_tasks.py). Each task maps a uint8 CHW image and
a class label to the transformed image; the objectives that use them draw the labels and build the
per-image pipeline inputs (`objectives/rotation.py`, `objectives/transform_prediction.py`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from solo_equimod.augment.per_image_applier import apply_view_params
from solo_equimod.augment.pipeline import normalize
from solo_equimod.augment.policy import ViewPolicy
from solo_equimod.augment.sampler import sample_view

# label r -> the order in which the 2x2 tiles (row-major: top-left, top-right, bottom-left, bottom-right) are
# placed; lexicographic, as the official `jigsaw_dict`
JIGSAW_PERMUTATIONS: tuple[tuple[int, ...], ...] = tuple(itertools.permutations(range(4)))
BLUR_KERNELS = (5, 9, 15)  # four-fold blur: label 0 is no blur, labels 1-3 these kernel sizes
BLUR_SIGMA = (0.1, 2.0)  # torchvision GaussianBlur's default sigma range, which the official task uses


def rotate(image: torch.Tensor, label: int) -> torch.Tensor:
    """Rotation by `label` x 90 degrees counter-clockwise (E-SSL's label k; torchvision's rotate(k * 90))."""
    return torch.rot90(image, label, dims=(-2, -1))


def hflip(image: torch.Tensor, label: int) -> torch.Tensor:
    return F.horizontal_flip(image) if label else image


def vflip(image: torch.Tensor, label: int) -> torch.Tensor:
    return F.vertical_flip(image) if label else image


def invert(image: torch.Tensor, label: int) -> torch.Tensor:
    return F.invert(image) if label else image


def grayscale(image: torch.Tensor, label: int) -> torch.Tensor:
    return F.rgb_to_grayscale(image, num_output_channels=3) if label else image


def blur(image: torch.Tensor, label: int, sigma: float | None = None) -> torch.Tensor:
    """Label 0: unchanged; 1-3: Gaussian blur with kernel BLUR_KERNELS[label - 1] and `sigma`
    (drawn from U[BLUR_SIGMA] when None, as torchvision's GaussianBlur)."""
    if not label:
        return image
    if sigma is None:
        sigma = float(torch.empty(()).uniform_(*BLUR_SIGMA))
    kernel = BLUR_KERNELS[label - 1]
    return F.gaussian_blur(image, kernel_size=[kernel, kernel], sigma=[sigma, sigma])


def jigsaw(image: torch.Tensor, label: int) -> torch.Tensor:
    """The image's 2x2 tiles placed in the order JIGSAW_PERMUTATIONS[label] (tile k of the output
    is input tile order[k]), as the official task on 32 px crops (16 px tiles)."""
    height, width = image.shape[-2:]
    th, tw = height // 2, width // 2
    tiles = [image[..., i * th:(i + 1) * th, j * tw:(j + 1) * tw] for i in range(2) for j in range(2)]
    placed = [tiles[k] for k in JIGSAW_PERMUTATIONS[label]]
    return torch.cat([torch.cat(placed[:2], dim=-1), torch.cat(placed[2:], dim=-1)], dim=-2)


@dataclass(frozen=True)
class PretextTask:
    """A k-class task: `apply(image, label)`; `resized_crop`: a RandomResizedCrop comes first (jigsaw)
    instead of the RandomCrop (a no-op on 32 px images) of the other official tasks."""

    num_classes: int
    apply: Callable[[torch.Tensor, int], torch.Tensor]
    resized_crop: bool = False


TASKS: dict[str, PretextTask] = {
    "hflip": PretextTask(2, hflip),
    "vflip": PretextTask(2, vflip),
    "color_inversion": PretextTask(2, invert),
    "grayscale": PretextTask(2, grayscale),
    "four_fold_rotation": PretextTask(4, rotate),
    "four_fold_blur": PretextTask(4, blur),
    "jigsaw": PretextTask(24, jigsaw, resized_crop=True),
}


def task_sample(image: torch.Tensor, task: str, crop: Callable[[torch.Tensor], torch.Tensor],
                mean: Sequence[float], std: Sequence[float]) -> dict[str, Any]:
    """One image's pretext input: `crop`, then `task` with a label drawn uniformly, normalised."""
    spec = TASKS[task]
    label = int(torch.randint(spec.num_classes, ()))
    return {"image": normalize(spec.apply(crop(image), label), mean, std), "label": label}


def task_crop(task: str, size: int, min_scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The official crop before a task: RandomResizedCrop(size, scale=(min_scale, 1)) for jigsaw,
    RandomCrop(size) (padded when smaller) for the others."""
    if TASKS[task].resized_crop:
        return v2.RandomResizedCrop(size, scale=(min_scale, 1.0), antialias=True)
    return v2.RandomCrop(size, pad_if_needed=True)


def policy_variant(policy: ViewPolicy, crop_size: int, crop_min_scale: float, crop_max_scale: float) -> ViewPolicy:
    """`policy` with another output size and crop scales (E-SSL's small rotation view)."""
    return replace(policy, crop_size=crop_size, crop_min_scale=crop_min_scale, crop_max_scale=crop_max_scale)


def rotated_views(image: torch.Tensor, policy: ViewPolicy, mean: Sequence[float],
                  std: Sequence[float]) -> list[torch.Tensor]:
    """One view of `image` through `policy`, in its four rotations (labels 0..3), normalised."""
    view = apply_view_params(image, sample_view(policy, *image.shape[-2:]), policy)
    return [normalize(rotate(view, k), mean, std) for k in range(4)]
