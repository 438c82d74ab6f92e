"""The DALI twin of `sample.py` + `apply.py`: batch-wise parameter draws fed to DALI, and the DALI
graph that applies them, so each view comes back with its raw Appendix A.1 vector.

Sampling (NumPy, one call per batch of the feeder): the same distributions as `sample_view_params`,
i.e. torchvision's `RandomResizedCrop.get_params` (10 attempts with a scale and a log-uniform ratio,
then the centre-crop fallback, offsets uniform over the valid range), `ColorJitter.get_params` (a
uniformly random order of the four operations, factors uniform in their ranges), Bernoulli flags and
sigma ~ U(sigma_min, sigma_max). It runs vectorised over the batch: drawn inside DALI as a graph of
per-sample scalar operators it halved the pipeline's throughput (see BENCHMARKS.md).

Applying (DALI graph): the same operation semantics as torchvision v2 on uint8 images (truncation
after each colour operation, contrast around the mean of the floored grayscale, hue shifted in HSV),
so a returned factor means the same thing in both pipelines. Per-sample branches use DALI
conditionals: the pipeline must be defined with `enable_conditionals=True`.

This module imports DALI; `solo_equimod.data.dali_loader` imports it only once DALI is known to be there.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import nvidia.dali.math as dmath
from nvidia.dali import fn, types
from nvidia.dali.data_node import DataNode

from solo_equimod.augment.params import DEFAULT_JITTER_FACTORS, DEFAULT_JITTER_ORDER, JITTER_OPS, ParamLayout
from solo_equimod.augment.pipeline import OriginalView
from solo_equimod.augment.policy import ViewPolicy

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights
RRC_ATTEMPTS = 10  # torchvision's RandomResizedCrop.get_params tries 10 windows before falling back


# ----------------------------------------------------------------------------- sampling (NumPy)


def sample_crops(policy: ViewPolicy, heights: np.ndarray, widths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[B, 4] windows x (left), y (top), w, h for images of the given sizes, as torchvision draws them.

    DALI's random_resized_crop draws its window internally and cannot return it, hence this.
    """
    height, width = heights.astype(np.float64), widths.astype(np.float64)
    if not policy.rrc_enabled:
        zeros = np.zeros_like(height)
        return np.stack([zeros, zeros, width, height], axis=1)
    n = len(height)
    lo_ratio, hi_ratio = policy.crop_ratio
    target = (height * width)[:, None] * rng.uniform(policy.crop_min_scale, policy.crop_max_scale, (n, RRC_ATTEMPTS))
    aspect = np.exp(rng.uniform(math.log(lo_ratio), math.log(hi_ratio), (n, RRC_ATTEMPTS)))
    w_try, h_try = np.rint(np.sqrt(target * aspect)), np.rint(np.sqrt(target / aspect))  # rint == round()
    valid = (w_try > 0) & (w_try <= width[:, None]) & (h_try > 0) & (h_try <= height[:, None])
    first, found = valid.argmax(axis=1), valid.any(axis=1)
    rows = np.arange(n)
    in_ratio = width / height
    w = np.where(found, w_try[rows, first], np.where(in_ratio > hi_ratio, np.rint(height * hi_ratio), width))
    h = np.where(found, h_try[rows, first], np.where(in_ratio < lo_ratio, np.rint(width / lo_ratio), height))
    y = np.where(found, rng.integers(0, (height - h + 1).astype(np.int64)), (height - h) // 2)
    x = np.where(found, rng.integers(0, (width - w + 1).astype(np.int64)), (width - w) // 2)
    return np.stack([x, y, w, h], axis=1)


def _coins(prob: float, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random(n) < prob if prob > 0 else np.zeros(n, dtype=bool)


def _factor(strength: float, center: float, n: int, rng: np.random.Generator, signed: bool = False) -> np.ndarray:
    if strength <= 0:
        return np.full(n, center)
    low = -strength if signed else max(0.0, center - strength)
    return rng.uniform(low, center + strength, n)


def sample_batch(policy: ViewPolicy, heights: np.ndarray, widths: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One view's parameters for a batch: {ParamLayout name: [B] values}, defaults when not applied."""
    n = len(heights)
    crops = sample_crops(policy, heights, widths, rng)
    jitter = _coins(policy.jitter_prob, n, rng)
    factors = np.stack([
        _factor(policy.brightness, 1.0, n, rng), _factor(policy.contrast, 1.0, n, rng),
        _factor(policy.saturation, 1.0, n, rng), _factor(policy.hue, 0.0, n, rng, signed=True),
    ], axis=1)
    factors = np.where(jitter[:, None], factors, np.array(DEFAULT_JITTER_FACTORS))
    order = np.where(jitter[:, None], np.argsort(rng.random((n, 4)), axis=1), np.array(DEFAULT_JITTER_ORDER))  # uniform
    blur = _coins(policy.blur_prob, n, rng)
    sigma = np.where(blur, rng.uniform(policy.sigma_min, policy.sigma_max, n), 0.0)
    values = {
        "flip_applied": _coins(policy.flip_prob, n, rng), "jitter_applied": jitter,
        "gray_applied": _coins(policy.gray_prob, n, rng), "blur_applied": blur,
        "solarize_applied": _coins(policy.solarize_prob, n, rng), "blur_sigma": sigma,
    }
    values.update({f"crop_{k}": crops[:, i] for i, k in enumerate(("x", "y", "width", "height"))})
    values.update({f"{op}_factor": factors[:, i] for i, op in enumerate(JITTER_OPS)})
    values.update({f"jitter_order_{k + 1}": order[:, k] for k in range(4)})
    return {k: np.asarray(v, dtype=np.float32) for k, v in values.items()}


def _jitter_ops(policy: ViewPolicy) -> list[str]:
    """The jitter operations a policy really applies (a zero-strength one is the identity)."""
    return [op for op in JITTER_OPS if policy.jitter_prob > 0 and getattr(policy, op) > 0]


def view_feed_names(policy: ViewPolicy) -> list[str]:
    """The inputs the DALI graph of a view with this policy reads, out of `view_feed`."""
    names = ["params", "anchor", "shape", "flip"]
    names += [flag for flag, prob in (("gray", policy.gray_prob), ("solarize", policy.solarize_prob)) if prob > 0]
    names += ["blur", "sigma"] if policy.blur_prob > 0 else []
    return names + [name for op in _jitter_ops(policy) for name in [op] + [f"{op}_at_{k}" for k in range(4)]]


def view_feed(layout: ParamLayout, draws: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the DALI graph of one view reads, computed from its draws: the vector, the window, and
    one boolean per flag and per (jitter position, operation), used as conditional predicates."""
    jitter = draws["jitter_applied"] > 0
    feed = {
        "params": np.stack([draws[name] for name in layout.names], axis=1),
        "anchor": np.stack([draws["crop_x"], draws["crop_y"]], axis=1),
        "shape": np.stack([draws["crop_width"], draws["crop_height"]], axis=1),
        "flip": draws["flip_applied"].astype(np.int32),
        "gray": draws["gray_applied"] > 0, "blur": draws["blur_applied"] > 0,
        "solarize": draws["solarize_applied"] > 0, "sigma": np.maximum(draws["blur_sigma"], 1e-3),
    }
    for i, op in enumerate(JITTER_OPS):
        feed[op] = draws[f"{op}_factor"]
        for k in range(4):
            feed[f"{op}_at_{k}"] = jitter & (draws[f"jitter_order_{k + 1}"] == i)
    return feed


def original_feed(original: OriginalView, heights: np.ndarray, widths: np.ndarray) -> dict[str, np.ndarray]:
    """Resize target "size" [B, 2] (h, w) and centre-crop "anchor" [B, 2] (x, y), as torchvision's
    Resize (shorter side) and CenterCrop compute them."""
    height, width = heights.astype(np.int64), widths.astype(np.int64)
    if original.resize is not None:
        short, long = np.minimum(height, width), np.maximum(height, width)
        new_long = (original.resize * long / short).astype(np.int64)  # torchvision truncates
        height, width = np.where(height > width, new_long, original.resize), np.where(height > width, original.resize, new_long)
    crop = original.center_crop or 0
    top = np.round((height - crop) / 2.0)  # np.round and round() both tie to even
    left = np.round((width - crop) / 2.0)
    return {
        "size": np.stack([height, width], axis=1).astype(np.float32),
        "anchor": np.stack([left, top], axis=1).astype(np.float32),
        "shape": np.full((len(height), 2), float(crop), dtype=np.float32),
    }


def original_feed_names(original: OriginalView) -> list[str]:
    """The inputs `make_original` reads, out of `original_feed`."""
    return (["size"] if original.resize is not None else []) + (["anchor", "shape"] if original.center_crop else [])


# ----------------------------------------------------------------------------- applying (DALI)


def _on(node: DataNode, on_gpu: bool) -> DataNode:
    """Per-sample scalars fed on the CPU are operands of GPU image arithmetic as GPU data."""
    return node.gpu() if on_gpu else node


def _round(x: DataNode) -> DataNode:
    # DALI has no round(); torchvision's round-half-even differs only on exact .5 ties
    return dmath.floor(x + 0.5)


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


_JITTER_FNS = {"brightness": _brightness, "contrast": _contrast, "saturation": _saturation, "hue": _hue}


def apply_jitter(x: DataNode, policy: ViewPolicy, feed: Mapping[str, DataNode], on_gpu: bool) -> DataNode:
    """At each of the four positions, the operation drawn for it (nothing where jitter is off)."""
    ops = _jitter_ops(policy)
    factors = {op: _on(feed[op], on_gpu) for op in ops}
    for k in range(4):
        for op in ops:
            if feed[f"{op}_at_{k}"]:
                x = _JITTER_FNS[op](x, factors[op])
    return x


def _grayscale(x: DataNode) -> DataNode:
    luma = dmath.floor(_gray(x))
    return fn.reshape(fn.cat(luma, luma, luma, axis=2), layout="HWC")


def _solarize(x: DataNode, threshold: float) -> DataNode:
    return x + fn.cast(x >= threshold, dtype=types.FLOAT) * (255.0 - 2.0 * x)


def make_view(
    image: DataNode, policy: ViewPolicy, feed: Mapping[str, DataNode], mean: Sequence[float], std: Sequence[float], on_gpu: bool
) -> DataNode:
    """Decoded uint8 HWC image -> normalised float CHW view, in `apply_view_params`' order."""
    view = fn.slice(image, feed["anchor"], feed["shape"], axis_names="WH", normalized_anchor=False, normalized_shape=False)
    interp = {"bilinear": types.INTERP_LINEAR, "bicubic": types.INTERP_CUBIC}[policy.interpolation]
    view = fn.resize(view, size=[policy.crop_size] * 2, antialias=True, interp_type=interp)
    if max(policy.jitter_prob, policy.gray_prob, policy.blur_prob, policy.solarize_prob) > 0:
        view = fn.cast(view, dtype=types.FLOAT)  # colour ops compute on float, truncating like uint8
    if policy.jitter_prob > 0:
        view = apply_jitter(view, policy, feed, on_gpu)
    if policy.gray_prob > 0:
        if feed["gray"]:
            view = _grayscale(view)
    if policy.blur_prob > 0:
        if feed["blur"]:
            view = _round(fn.gaussian_blur(view, window_size=policy.kernel_size, sigma=feed["sigma"]))
    if policy.solarize_prob > 0:
        if feed["solarize"]:
            view = _solarize(view, policy.solarize_threshold * 255.0)
    # flipping last equals flipping right after the crop: every later op is per pixel, or a
    # symmetric blur with mirror-symmetric borders, and the contrast mean ignores pixel positions
    return fn.crop_mirror_normalize(
        view, mirror=feed["flip"], mean=[255.0 * m for m in mean], std=[255.0 * s for s in std],
        output_layout="CHW", dtype=types.FLOAT,
    )


def make_original(
    image: DataNode, original: OriginalView, feed: Mapping[str, DataNode], mean: Sequence[float], std: Sequence[float]
) -> DataNode:
    """The un-augmented view: torchvision's Resize(shorter side) + CenterCrop, normalised."""
    if original.resize is not None:
        image = fn.resize(image, size=feed["size"], antialias=True, interp_type=types.INTERP_LINEAR)
    if original.center_crop is not None:
        image = fn.slice(
            image, feed["anchor"], feed["shape"], axis_names="WH", normalized_anchor=False,
            normalized_shape=False, out_of_bounds_policy="pad",
        )
    return fn.crop_mirror_normalize(
        image, mean=[255.0 * m for m in mean], std=[255.0 * s for s in std], output_layout="CHW", dtype=types.FLOAT,
    )
