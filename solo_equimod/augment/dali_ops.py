"""DALI graph pieces that sample one view's parameters and apply them, returning the raw vector.

This is the DALI twin of `sample.py` + `apply.py`: the same distributions (torchvision's
`RandomResizedCrop.get_params` with its 10 attempts and centre-crop fallback, `ColorJitter.get_params`
with a uniformly random order of the four operations, Bernoulli flags, sigma ~ U(sigma_min,
sigma_max)) and the same operation semantics (torchvision v2 on uint8 images: truncation after each
colour operation, contrast around the mean of the floored grayscale, hue shifted in HSV), so that a
returned factor means the same thing in both pipelines. The vector follows Appendix A.1 through
`ParamLayout.names`.

Everything is built with `nvidia.dali.fn` inside a pipeline definition; this module imports DALI at
import time and is therefore only imported by `solo_equimod.data.dali_loader` once DALI is known to
be installed. Per-sample branches use DALI conditionals, so the pipeline must be defined with
`enable_conditionals=True`.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
import nvidia.dali.math as dmath
from nvidia.dali import fn, types
from nvidia.dali.data_node import DataNode

from solo_equimod.augment.params import ParamLayout
from solo_equimod.augment.pipeline import OriginalView
from solo_equimod.augment.policy import ViewPolicy

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights
RRC_ATTEMPTS = 10  # torchvision's RandomResizedCrop.get_params tries 10 windows before falling back
_PERMS3 = list(itertools.permutations(range(3)))  # orders of brightness, contrast, saturation


def _const(value: float) -> DataNode:
    return fn.constant(fdata=float(value), shape=[], dtype=types.FLOAT)


def _uniform(low: float, high: float, shape: Sequence[int] | None = None) -> DataNode:
    if low == high:
        return _const(low)
    return fn.random.uniform(range=[low, high], shape=shape or [], dtype=types.FLOAT)


def _coin(prob: float) -> DataNode:
    """A per-sample 0./1. flag; probability 0 gives constant zeros (the layout may still hold it)."""
    return fn.cast(fn.random.coin_flip(probability=prob), dtype=types.FLOAT)


def _on(node: DataNode, on_gpu: bool) -> DataNode:
    """Per-sample scalars drawn on the CPU feed GPU image ops as GPU data."""
    return node.gpu() if on_gpu else node


def _round(x: DataNode) -> DataNode:
    # DALI has no round(); ties are measure-zero for the continuous draws that reach here
    return dmath.floor(x + 0.5)


def _round_half_even_half(d: DataNode) -> DataNode:
    """round(d / 2) with Python's ties-to-even, for integer-valued d >= 0 (torchvision's center_crop)."""
    q = dmath.floor(d / 2.0)
    d_odd = d - 2.0 * q
    q_odd = q - 2.0 * dmath.floor(q / 2.0)
    return q + d_odd * q_odd


# ----------------------------------------------------------------------------- sampling


def sample_crop(height: DataNode, width: DataNode, policy: ViewPolicy) -> tuple[DataNode, DataNode, DataNode, DataNode]:
    """x (left), y (top), w, h of a RandomResizedCrop window, drawn like torchvision's get_params.

    DALI's own random_resized_crop samples internally and cannot return its window, so the
    10 attempts are drawn at once and the first valid one is picked with reductions.
    """
    if not policy.rrc_enabled:
        zero = height * 0.0
        return zero, zero, width, height
    area = height * width
    log_lo, log_hi = math.log(policy.crop_ratio[0]), math.log(policy.crop_ratio[1])
    target = area * _uniform(policy.crop_min_scale, policy.crop_max_scale, [RRC_ATTEMPTS])
    aspect = dmath.exp(_uniform(log_lo, log_hi, [RRC_ATTEMPTS]))
    w_try = _round(dmath.sqrt(target * aspect))
    h_try = _round(dmath.sqrt(target / aspect))
    valid = (w_try <= width) & (h_try <= height) & (w_try > 0.0) & (h_try > 0.0)
    # the earliest valid attempt gets the largest rank; rank 0 means "not valid"
    countdown = types.Constant(np.arange(RRC_ATTEMPTS, 0, -1, dtype=np.float32))
    rank = fn.cast(valid, dtype=types.FLOAT) * countdown
    best = fn.reductions.max(rank)
    found = fn.cast(best > 0.0, dtype=types.FLOAT)
    pick = fn.cast((rank == best) & valid, dtype=types.FLOAT)
    w_found = fn.reductions.sum(w_try * pick)
    h_found = fn.reductions.sum(h_try * pick)
    # fallback: the largest centred window whose ratio is clipped into the configured range
    in_ratio = width / height
    too_tall = fn.cast(in_ratio < policy.crop_ratio[0], dtype=types.FLOAT)
    too_wide = fn.cast(in_ratio > policy.crop_ratio[1], dtype=types.FLOAT)
    w_fb = width + too_wide * (_round(height * policy.crop_ratio[1]) - width)
    h_fb = height + too_tall * (_round(width / policy.crop_ratio[0]) - height)
    w = w_fb + found * (w_found - w_fb)
    h = h_fb + found * (h_found - h_fb)
    # torch.randint(0, n) == floor(U[0,1) * n); min() guards the open end against float rounding
    y_rand = dmath.min(dmath.floor(_uniform(0.0, 1.0) * (height - h + 1.0)), height - h)
    x_rand = dmath.min(dmath.floor(_uniform(0.0, 1.0) * (width - w + 1.0)), width - w)
    y_fb = dmath.floor((height - h) / 2.0)
    x_fb = dmath.floor((width - w) / 2.0)
    return x_fb + found * (x_rand - x_fb), y_fb + found * (y_rand - y_fb), w, h


def _jitter_range(strength: float, center: float) -> tuple[float, float]:
    return (max(0.0, center - strength), center + strength) if strength > 0 else (center, center)


class JitterDraw:
    """Colour-jitter parameters of one view, drawn like ColorJitter.get_params.

    A uniform permutation of the four operations is drawn as a uniform position of hue (0..3) and a
    uniform order of brightness/contrast/saturation (one of 6): together uniform over all 24.
    """

    def __init__(self, policy: ViewPolicy) -> None:
        self.applied = _coin(policy.jitter_prob)
        drawn = (
            _uniform(*_jitter_range(policy.brightness, 1.0)),
            _uniform(*_jitter_range(policy.contrast, 1.0)),
            _uniform(*_jitter_range(policy.saturation, 1.0)),
            _uniform(-policy.hue, policy.hue),
        )
        self.drawn = drawn
        perm = fn.random.choice(len(_PERMS3))
        self.bcs_order = [
            fn.lookup_table(perm, keys=list(range(len(_PERMS3))), values=[float(p[k]) for p in _PERMS3], dtype=types.FLOAT)
            for k in range(3)
        ]
        self.hue_pos = fn.cast(fn.random.choice(4), dtype=types.FLOAT)

    def factors(self) -> list[DataNode]:
        """b, c, s, h as returned: the drawn values when applied, else Appendix A.1's defaults."""
        return [default + self.applied * (d - default) for d, default in zip(self.drawn, (1.0, 1.0, 1.0, 0.0))]

    def order(self) -> list[DataNode]:
        """The four op indices in application order (0 b, 1 c, 2 s, 3 h); 0,1,2,3 when not applied."""
        p = self.hue_pos
        before = [fn.cast(p > float(k), dtype=types.FLOAT) for k in range(4)]
        at = [fn.cast(p == float(k), dtype=types.FLOAT) for k in range(4)]
        after = [1.0 - b - a for b, a in zip(before, at)]
        drawn = []
        for k in range(4):
            value = at[k] * 3.0
            if k < 3:
                value = value + before[k] * self.bcs_order[k]
            if k > 0:
                value = value + after[k] * self.bcs_order[k - 1]
            drawn.append(value)
        return [float(k) + self.applied * (d - float(k)) for k, d in enumerate(drawn)]


# ----------------------------------------------------------------------------- applying


def _gray(x: DataNode) -> DataNode:
    """Float HWC -> unfloored HW1 luma with torchvision's weights."""
    weights = types.Constant(np.array(GRAY_WEIGHTS, dtype=np.float32))
    return fn.reductions.sum(x * weights, axes=[2], keep_dims=True)


def _to_uint8_range(x: DataNode) -> DataNode:
    """torchvision's clamp then `.to(uint8)`, i.e. truncation, on float data."""
    return dmath.floor(dmath.clamp(x, 0.0, 255.0))


def _brightness(x: DataNode, factor: DataNode) -> DataNode:
    return _to_uint8_range(x * factor)


def _contrast(x: DataNode, factor: DataNode) -> DataNode:
    mean = fn.reductions.mean(dmath.floor(_gray(x)))
    return _to_uint8_range(x * factor + mean * (1.0 - factor))


def _saturation(x: DataNode, factor: DataNode) -> DataNode:
    return _to_uint8_range(x * factor + dmath.floor(_gray(x)) * (1.0 - factor))


def _hue(x: DataNode, factor: DataNode) -> DataNode:
    """torchvision's adjust_hue (RGB -> HSV, shift, HSV -> RGB, x255.999 truncation).

    DALI's fn.hue rotates in YIQ space, which gives a different image for the same factor, so the
    HSV shift is written out: V = max and V*(1-S) = min are kept, and each channel n in (5, 3, 1)
    becomes max - (max - min) * clamp(min(k, 4 - k), 0, 1) with k = (n + 6 * hue) mod 6.
    """
    r, g, b = x[:, :, 0], x[:, :, 1], x[:, :, 2]
    hi = dmath.max(dmath.max(r, g), b)
    lo = dmath.min(dmath.min(r, g), b)
    span = hi - lo
    div = span + fn.cast(span == 0.0, dtype=types.FLOAT)
    is_r = fn.cast(hi == r, dtype=types.FLOAT)
    is_g = fn.cast(hi == g, dtype=types.FLOAT) * (1.0 - is_r)
    is_b = 1.0 - is_r - is_g
    hue6 = (is_r * (g - b) + is_g * (b - r + 2.0 * div) + is_b * (r - g + 4.0 * div)) / div
    hue6 = hue6 + (factor * 6.0 + 6.0)
    hue6 = hue6 - 6.0 * dmath.floor(hue6 / 6.0)
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = hue6 + n
        k = k - 6.0 * fn.cast(k >= 6.0, dtype=types.FLOAT)
        ramp = dmath.clamp(dmath.min(k, 4.0 - k), 0.0, 1.0)
        channels.append(dmath.floor((hi - span * ramp) * (255.999 / 255.0)))
    return fn.reshape(fn.stack(*channels, axis=2), layout="HWC")


def _affine_slot(x: DataNode, active: DataNode, op: DataNode, factors: Sequence[DataNode]) -> DataNode:
    """Apply brightness (op 0), contrast (1) or saturation (2) to the samples where `active`."""
    if active:
        if op == 0.0:
            x = _brightness(x, factors[0])
        elif op == 1.0:
            x = _contrast(x, factors[1])
        else:
            x = _saturation(x, factors[2])
    return x


def apply_jitter(x: DataNode, jitter: JitterDraw, with_hue: bool, on_gpu: bool) -> DataNode:
    """The four jitter operations in the drawn order: b/c/s slots before hue, hue, slots after."""
    applied = jitter.applied > 0.5
    factors = [_on(f, on_gpu) for f in jitter.drawn]
    for k in range(3):
        x = _affine_slot(x, applied & (jitter.hue_pos > float(k)), jitter.bcs_order[k], factors)
    if with_hue:
        if applied:
            x = _hue(x, factors[3])
    for k in range(3):
        x = _affine_slot(x, applied & (jitter.hue_pos <= float(k)), jitter.bcs_order[k], factors)
    return x


def _grayscale(x: DataNode) -> DataNode:
    luma = dmath.floor(_gray(x))
    return fn.reshape(fn.cat(luma, luma, luma, axis=2), layout="HWC")


def _solarize(x: DataNode, threshold: float) -> DataNode:
    return x + fn.cast(x >= threshold, dtype=types.FLOAT) * (255.0 - 2.0 * x)


def make_view(
    image: DataNode, height: DataNode, width: DataNode, policy: ViewPolicy, layout: ParamLayout,
    mean: Sequence[float], std: Sequence[float], on_gpu: bool,
) -> tuple[DataNode, DataNode]:
    """Decoded uint8 HWC image -> (normalised float CHW view, raw Appendix A.1 vector [D])."""
    x, y, w, h = sample_crop(height, width, policy)
    flip = _coin(policy.flip_prob)
    jitter = JitterDraw(policy)
    gray = _coin(policy.gray_prob)
    blur = _coin(policy.blur_prob)
    sigma = _uniform(policy.sigma_min, policy.sigma_max)
    solarize = _coin(policy.solarize_prob)

    anchor, shape = fn.stack(x, y), fn.stack(w, h)
    view = fn.slice(image, anchor, shape, axis_names="WH", normalized_anchor=False, normalized_shape=False)
    view = fn.resize(view, size=[policy.crop_size] * 2, antialias=True, interp_type=types.INTERP_LINEAR)
    view = fn.cast(view, dtype=types.FLOAT)
    if policy.jitter_prob > 0:
        view = apply_jitter(view, jitter, with_hue=policy.hue > 0, on_gpu=on_gpu)
    if policy.gray_prob > 0:
        if gray > 0.5:
            view = _grayscale(view)
    if policy.blur_prob > 0:
        if blur > 0.5:
            view = _round(fn.gaussian_blur(view, window_size=policy.kernel_size, sigma=sigma))
    if policy.solarize_prob > 0:
        if solarize > 0.5:
            view = _solarize(view, policy.solarize_threshold * 255.0)
    # flipping last equals flipping right after the crop: every later op is per pixel, or a
    # symmetric blur with mirror-symmetric borders, and the contrast mean ignores pixel positions
    view = fn.crop_mirror_normalize(
        view, mirror=fn.cast(flip, dtype=types.INT32), mean=[255.0 * m for m in mean],
        std=[255.0 * s for s in std], output_layout="CHW", dtype=types.FLOAT,
    )

    b, c, s, hue = jitter.factors()
    values = {
        "flip_applied": flip, "jitter_applied": jitter.applied, "gray_applied": gray,
        "blur_applied": blur, "solarize_applied": solarize,
        "crop_x": x, "crop_y": y, "crop_width": w, "crop_height": h,
        "brightness_factor": b, "contrast_factor": c, "saturation_factor": s, "hue_factor": hue,
        "blur_sigma": blur * sigma,
    }
    values.update({f"jitter_order_{k + 1}": o for k, o in enumerate(jitter.order())})
    params = fn.stack(*[fn.cast(values[name], dtype=types.FLOAT) for name in layout.names])
    return view, params


def make_original(
    image: DataNode, height: DataNode, width: DataNode, original: OriginalView,
    mean: Sequence[float], std: Sequence[float],
) -> DataNode:
    """The un-augmented view: torchvision's Resize(shorter side) + CenterCrop, normalised."""
    if original.resize is not None:
        short, long = dmath.min(height, width), dmath.max(height, width)
        new_long = dmath.floor(long * float(original.resize) / short)  # torchvision truncates
        portrait = fn.cast(height > width, dtype=types.FLOAT)
        height = original.resize + portrait * (new_long - original.resize)
        width = new_long + portrait * (original.resize - new_long)
        image = fn.resize(image, size=fn.stack(height, width), antialias=True, interp_type=types.INTERP_LINEAR)
    if original.center_crop is not None:
        side = float(original.center_crop)
        top = _round_half_even_half(height - side)
        left = _round_half_even_half(width - side)
        image = fn.slice(
            image, fn.stack(left, top), fn.stack(width * 0.0 + side, height * 0.0 + side), axis_names="WH",
            normalized_anchor=False, normalized_shape=False, out_of_bounds_policy="pad",
        )
    return fn.crop_mirror_normalize(
        image, mean=[255.0 * m for m in mean], std=[255.0 * s for s in std], output_layout="CHW", dtype=types.FLOAT,
    )
