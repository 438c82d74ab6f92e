"""Sample the parameters of one view explicitly, so they can be returned next to the view.

The random draws reuse torchvision's own samplers (`RandomResizedCrop.get_params`,
`ColorJitter.get_params`), so the distributions are exactly torchvision's; they use torch's
global RNG, which DataLoader seeds per worker, and `torch.random.fork_rng` makes a seeded sample.
"""

from __future__ import annotations

import torch
from torchvision.transforms import ColorJitter, RandomResizedCrop

from solo_equimod.augment.params import DEFAULT_JITTER_FACTORS, DEFAULT_JITTER_ORDER, ViewParams
from solo_equimod.augment.policy import ViewPolicy


def _bernoulli(p: float) -> bool:
    return p > 0 and bool(torch.rand(()) < p)


def _jitter_range(strength: float, center: float) -> tuple[float, float] | None:
    return (max(0.0, center - strength), center + strength) if strength > 0 else None


def sample_view_params(policy: ViewPolicy, height: int, width: int) -> ViewParams:
    """Draw one view's parameters for an input image of the given size (Appendix A.1 order)."""
    if policy.rrc_enabled:
        dummy = torch.empty(1, height, width)  # get_params reads only the shape
        top, left, h, w = RandomResizedCrop.get_params(
            dummy, scale=[policy.crop_min_scale, policy.crop_max_scale], ratio=list(policy.crop_ratio)
        )
    else:
        top, left, h, w = 0, 0, height, width
    flip = _bernoulli(policy.flip_prob)

    jitter = _bernoulli(policy.jitter_prob)
    factors, order = DEFAULT_JITTER_FACTORS, DEFAULT_JITTER_ORDER
    if jitter:
        fn_idx, b, c, s, hue = ColorJitter.get_params(
            _jitter_range(policy.brightness, 1.0),
            _jitter_range(policy.contrast, 1.0),
            _jitter_range(policy.saturation, 1.0),
            (-policy.hue, policy.hue) if policy.hue > 0 else None,
        )
        factors = (
            1.0 if b is None else float(b),
            1.0 if c is None else float(c),
            1.0 if s is None else float(s),
            0.0 if hue is None else float(hue),
        )
        order = tuple(int(i) for i in fn_idx)

    gray = _bernoulli(policy.gray_prob)
    blur = _bernoulli(policy.blur_prob)
    sigma = float(torch.empty(()).uniform_(policy.sigma_min, policy.sigma_max)) if blur else 0.0
    solarize = _bernoulli(policy.solarize_prob)
    return ViewParams(
        crop=(int(left), int(top), int(w), int(h)),
        flip=flip,
        jitter=jitter,
        factors=factors,  # type: ignore[arg-type]
        order=order,  # type: ignore[arg-type]
        gray=gray,
        blur=blur,
        sigma=sigma,
        solarize=solarize,
    )
