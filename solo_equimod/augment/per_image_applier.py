"""Apply explicit view parameters with `torchvision.transforms.v2.functional`.

Lightly's and torchvision's random transforms draw and apply in one call and cannot return what
they drew, so the pipeline samples with `solo_equimod.augment.sampler` and applies here.
"""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as F

from solo_equimod.augment.params import JITTER_OPS, ViewParams
from solo_equimod.augment.policy import ViewPolicy

_JITTER_FNS = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)


def crop_and_flip(image: torch.Tensor, params: ViewParams, policy: ViewPolicy) -> torch.Tensor:
    """The geometric part of a view: the resized crop to `policy.crop_size`, then the flip."""
    x, y, w, h = params.crop
    view = F.resized_crop(image, top=y, left=x, height=h, width=w, size=[policy.crop_size] * 2, antialias=True,
                          interpolation=F.InterpolationMode(policy.interpolation))
    return F.horizontal_flip(view) if params.flip else view


def color_jitter(view: torch.Tensor, params: ViewParams, policy: ViewPolicy) -> torch.Tensor:
    """Colour jitter in the view's own order (unchanged where it was not applied)."""
    if params.jitter:
        for op in params.order:
            if getattr(policy, JITTER_OPS[op]) > 0:  # as ColorJitter, an operation of strength 0 is skipped
                view = _JITTER_FNS[op](view, params.factors[op])
    return view


def after_jitter(view: torch.Tensor, params: ViewParams, policy: ViewPolicy) -> torch.Tensor:
    """What follows colour jitter: grayscale, Gaussian blur, solarize."""
    if params.gray:
        view = F.rgb_to_grayscale(view, num_output_channels=3)
    if params.blur:
        view = F.gaussian_blur(view, kernel_size=[policy.kernel_size] * 2, sigma=[params.sigma] * 2)
    if params.solarize:
        view = F.solarize(view, threshold=policy.solarize_threshold * 255)
    return view


def color_shift(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Each channel's mean intensity (in [0, 1]) of `before` minus that of `after`, over the last two
    dims: CASSLE's colour difference of a view, its means before and after colour jitter
    (mprzewie/AugSelf transforms.py ColorJitter: x_means - x_new_means on [0, 1] images)."""
    return (before.float().mean(dim=(-2, -1)) - after.float().mean(dim=(-2, -1))) / 255.0


def apply_view_params(image: torch.Tensor, params: ViewParams, policy: ViewPolicy) -> torch.Tensor:
    """uint8 CHW image -> uint8 CHW view of side `policy.crop_size`, in Appendix A.1's order."""
    return after_jitter(color_jitter(crop_and_flip(image, params, policy), params, policy), params, policy)


def apply_view_params_and_shift(image: torch.Tensor, params: ViewParams,
                                policy: ViewPolicy) -> tuple[torch.Tensor, torch.Tensor]:
    """`apply_view_params` and the view's `color_shift` across colour jitter, (3,) float32 (0 without jitter)."""
    before = crop_and_flip(image, params, policy)
    jittered = color_jitter(before, params, policy)
    return after_jitter(jittered, params, policy), color_shift(before, jittered)
