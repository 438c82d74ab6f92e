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


def apply_view_params(image: torch.Tensor, params: ViewParams, policy: ViewPolicy) -> torch.Tensor:
    """uint8 CHW image -> uint8 CHW view of side `policy.crop_size`, in Appendix A.1's order."""
    x, y, w, h = params.crop
    view = F.resized_crop(image, top=y, left=x, height=h, width=w, size=[policy.crop_size] * 2, antialias=True,
                          interpolation=F.InterpolationMode(policy.interpolation))
    if params.flip:
        view = F.horizontal_flip(view)
    if params.jitter:
        for op in params.order:
            if getattr(policy, JITTER_OPS[op]) > 0:  # as ColorJitter, an operation of strength 0 is skipped
                view = _JITTER_FNS[op](view, params.factors[op])
    if params.gray:
        view = F.rgb_to_grayscale(view, num_output_channels=3)
    if params.blur:
        view = F.gaussian_blur(view, kernel_size=[policy.kernel_size] * 2, sigma=[params.sigma] * 2)
    if params.solarize:
        view = F.solarize(view, threshold=policy.solarize_threshold * 255)
    return view
