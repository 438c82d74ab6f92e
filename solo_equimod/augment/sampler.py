"""The one sampler of view parameters: B views at once, with torchvision's distributions.

Every loader draws here: the per-image torchvision path (B=1), the DALI feeder and the batched
applier (`solo_equimod.augment.batched_applier`). The distributions are torchvision's, vectorised:

- crop: `RandomResizedCrop.get_params`: up to `RRC_ATTEMPTS` (10) windows of area
  U(min_scale, max_scale) * H * W and log-uniform aspect ratio, w = round(sqrt(area * ratio)),
  h = round(sqrt(area / ratio)); the first that fits is placed uniformly (top in [0, H - h], left in
  [0, W - w]); if none fits, the centre crop of the whole image clamped to the ratio range;
- colour jitter: `ColorJitter.get_params`: factors uniform in [max(0, 1 - s), 1 + s] (brightness,
  contrast, saturation) and [-hue, hue], and a uniformly random order of the four operations
  (the argsort of four uniforms, distributed as `torch.randperm(4)`);
- flags Bernoulli(prob) and blur sigma U(sigma_min, sigma_max) (`GaussianBlur.get_params`).

torchvision's samplers draw one image per call (and kornia one jitter order per batch), so this is
ours. A call draws one block of 2 * RRC_ATTEMPTS + 2 + `DRAWS` uniforms per group from `generator` (None: torch's global
RNG, which a DataLoader seeds per worker), whatever the policy, and computes on them in NumPy
(dozens of tiny torch operations cost ~1 ms a view, which the per-image path cannot afford).
"""

from __future__ import annotations

import math
from typing import Collection

import numpy as np
import torch

from solo_equimod.augment.params import (
    AUGMENTATION_FIELDS,
    DEFAULT_JITTER_FACTORS,
    DEFAULT_JITTER_ORDER,
    BatchViewParams,
    ViewParams,
)
from solo_equimod.augment.policy import ViewPolicy

RRC_ATTEMPTS = 10  # torchvision's RandomResizedCrop.get_params tries 10 windows before its fallback


# columns of the (G, DRAWS) uniforms of everything but the crop, drawn per group
_FLIP, _JITTER, _FACTORS, _ORDER = 0, 1, slice(2, 6), slice(6, 10)
_GRAY, _BLUR, _SIGMA, _SOLARIZE = 10, 11, 12, 13
DRAWS = 14


def _crops(policy: ViewPolicy, h_img: np.ndarray, w_img: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(G, 4) windows x, y, w, h for images of the given (G,) sizes, as `RandomResizedCrop.get_params`,
    from (G, 2 * RRC_ATTEMPTS + 2) uniforms: scales, aspect ratios, top, left."""
    if not policy.rrc_enabled:
        zeros = np.zeros_like(h_img)
        return np.stack([zeros, zeros, w_img, h_img], axis=1)
    lo, hi = policy.crop_ratio
    n = (u.shape[1] - 2) // 2
    area = (h_img * w_img)[:, None] * (u[:, :n] * (policy.crop_max_scale - policy.crop_min_scale)
                                       + policy.crop_min_scale)
    aspect = np.exp(u[:, n:2 * n] * (math.log(hi) - math.log(lo)) + math.log(lo))
    w_try, h_try = np.rint(np.sqrt(area * aspect)), np.rint(np.sqrt(area / aspect))  # rint ties to even, as round()
    fits = (w_try > 0) & (w_try <= w_img[:, None]) & (h_try > 0) & (h_try <= h_img[:, None])
    rows, first, found = np.arange(len(fits)), fits.argmax(axis=1), fits.any(axis=1)  # argmax: the first that fits
    in_ratio = w_img / h_img
    w_fall = np.where(in_ratio > hi, np.rint(h_img * hi), w_img)
    h_fall = np.where(in_ratio < lo, np.rint(w_img / lo), h_img)
    w = np.where(found, w_try[rows, first], w_fall)
    h = np.where(found, h_try[rows, first], h_fall)
    top = np.where(found, np.floor(u[:, -2] * (h_img - h + 1)), np.floor((h_img - h) / 2))
    left = np.where(found, np.floor(u[:, -1] * (w_img - w + 1)), np.floor((w_img - w) / 2))
    return np.stack([left, top, w, h], axis=1)


def _draw(policy: ViewPolicy, height: np.ndarray, width: np.ndarray, u_crop: np.ndarray,
          u: np.ndarray) -> BatchViewParams:
    """The parameters of G views from their crop uniforms and (G, DRAWS) other uniforms."""
    ranges = [(max(0.0, 1.0 - s), 1.0 + s) for s in (policy.brightness, policy.contrast, policy.saturation)]
    low, high = np.array([r[0] for r in ranges] + [-policy.hue]), np.array([r[1] for r in ranges] + [policy.hue])
    jitter, blur = u[:, _JITTER] < policy.jitter_prob, u[:, _BLUR] < policy.blur_prob
    factors = np.where(jitter[:, None], u[:, _FACTORS] * (high - low) + low, DEFAULT_JITTER_FACTORS)
    order = np.where(jitter[:, None], u[:, _ORDER].argsort(axis=1), DEFAULT_JITTER_ORDER)
    sigma = np.where(blur, u[:, _SIGMA] * (policy.sigma_max - policy.sigma_min) + policy.sigma_min, 0.0)
    return BatchViewParams(
        crop=torch.from_numpy(_crops(policy, height, width, u_crop).astype(np.int64)),
        flip=torch.from_numpy(u[:, _FLIP] < policy.flip_prob), jitter=torch.from_numpy(jitter),
        factors=torch.from_numpy(factors.astype(np.float32)), order=torch.from_numpy(order.astype(np.int64)),
        gray=torch.from_numpy(u[:, _GRAY] < policy.gray_prob), blur=torch.from_numpy(blur),
        sigma=torch.from_numpy(sigma.astype(np.float32)), solarize=torch.from_numpy(u[:, _SOLARIZE] < policy.solarize_prob),
    )


def sample_views(policy: ViewPolicy, heights: torch.Tensor, widths: torch.Tensor,
                 generator: torch.Generator | None = None, groups: torch.Tensor | None = None,
                 shared: Collection[str] | None = None) -> BatchViewParams:
    """The parameters of one view of each of B images of sizes `heights`, `widths` (B,), on the CPU
    (move them with `.to(device)`).

    `generator`: a CPU generator (None: torch's global RNG). `groups` (B,) ids: the samples that
    share an id share one draw (CARE's equally-transformed chunks); `shared` (names of
    AUGMENTATION_FIELDS) limits that to these augmentations, the others drawn per sample after the
    groups' draw (STL's aligned pairs share crop, colour jitter and grayscale; None: all). The rule for sizes: a crop
    window is in pixels of one input size, so all members of a group must have the same size,
    else this is an error (resize them to a common size first, e.g. the original view).
    """
    heights = torch.as_tensor(heights).cpu().numpy().astype(np.float64)
    widths = torch.as_tensor(widths).cpu().numpy().astype(np.float64)
    if heights.shape != widths.shape or heights.ndim != 1:
        raise ValueError(f"heights {heights.shape} and widths {widths.shape} must be two (B,) tensors")
    if groups is None:
        first, member_of = np.arange(len(heights)), None
    else:
        ids = torch.as_tensor(groups).cpu().numpy()
        if ids.shape != heights.shape:
            raise ValueError(f"groups {ids.shape} must hold one id per sample, like heights {heights.shape}")
        _, first, member_of = np.unique(ids, return_index=True, return_inverse=True)
        same = (heights == heights[first][member_of]) & (widths == widths[first][member_of])
        if not same.all():
            raise ValueError(f"sample_views: group {ids[~same][0]} holds images of different sizes; a shared crop "
                             "is in pixels of one size, so resize the images of a group to a common size first")
    u_crop = torch.rand((len(first), 2 * RRC_ATTEMPTS + 2), generator=generator, dtype=torch.float64).numpy()
    u = torch.rand((len(first), DRAWS), generator=generator, dtype=torch.float64).numpy()
    drawn = _draw(policy, heights[first], widths[first], u_crop, u)
    if member_of is None:
        return drawn
    drawn = drawn.select(torch.from_numpy(member_of.reshape(-1)))
    if shared is None:
        return drawn
    unknown = set(shared) - set(AUGMENTATION_FIELDS)
    if unknown:
        raise ValueError(f"shared={sorted(shared)}: {sorted(unknown)} unknown; augmentations: {list(AUGMENTATION_FIELDS)}")
    return sample_views(policy, torch.from_numpy(heights), torch.from_numpy(widths), generator).with_draws_of(drawn, shared)


def sample_view(policy: ViewPolicy, height: int, width: int, generator: torch.Generator | None = None) -> ViewParams:
    """One view's parameters for one image (the per-image torchvision path): `sample_views` with B=1."""
    return sample_views(policy, torch.tensor([height]), torch.tensor([width]), generator).row(0)
