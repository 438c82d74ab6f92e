"""The DALI twin of `sampler.py` + `per_image_applier.py`: batch-wise parameter draws fed to DALI, and the DALI
graph that applies them, so each view comes back with its raw Appendix A.1 vector.

Sampling: the feeder draws each batch's parameters with the one batch-level sampler
(`solo_equimod.augment.sampler.sample_views`, torchvision's distributions) and `view_feed` turns them
into DALI inputs; drawn inside DALI as a graph of per-sample scalar operators it halved the
pipeline's throughput (see BENCHMARKS.md).

Applying (DALI graph): the same operation semantics as torchvision v2 on uint8 images (truncation
after each colour operation, contrast around the mean of the floored grayscale, hue shifted in HSV),
so a returned factor means the same thing in both pipelines. Per-sample branches use DALI
conditionals: the pipeline must be defined with `enable_conditionals=True`.

This module imports DALI; `solo_equimod.data.dali` imports it only once DALI is known to be there.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import nvidia.dali.math as dmath
from nvidia.dali import fn, types
from nvidia.dali.data_node import DataNode

from solo_equimod.augment.batched_applier import GRAY_WEIGHTS
from solo_equimod.augment.params import JITTER_OPS, AugmentationLayout, BatchViewParams
from solo_equimod.augment.pipeline import OriginalView
from solo_equimod.augment.policy import ViewPolicy

# ----------------------------------------------------------------------------- feeding (NumPy)


def _jitter_ops(policy: ViewPolicy) -> list[str]:
    """The jitter operations a policy really applies (a zero-strength one is the identity)."""
    return [op for op in JITTER_OPS if policy.jitter_prob > 0 and getattr(policy, op) > 0]


def view_feed_names(policy: ViewPolicy) -> list[str]:
    """The inputs the DALI graph of a view with this policy reads, out of `view_feed`."""
    names = ["params", "anchor", "shape", "flip"]
    names += [flag for flag, prob in (("gray", policy.gray_prob), ("solarize", policy.solarize_prob)) if prob > 0]
    names += ["blur", "sigma"] if policy.blur_prob > 0 else []
    return names + [name for op in _jitter_ops(policy) for name in [op] + [f"{op}_at_{k}" for k in range(4)]]


def view_feed(layout: AugmentationLayout, draws: BatchViewParams) -> dict[str, np.ndarray]:
    """What the DALI graph of one view reads, computed from its draws: the vector, the window, and
    one boolean per flag and per (jitter position, operation), used as conditional predicates."""
    d = draws.to("cpu")
    crop = d.crop.numpy().astype(np.float32)
    jitter = d.jitter.numpy()
    feed = {
        "params": layout.encode_batch(d).numpy(), "anchor": crop[:, :2], "shape": crop[:, 2:],
        "flip": d.flip.numpy().astype(np.int32), "gray": d.gray.numpy(), "blur": d.blur.numpy(),
        "solarize": d.solarize.numpy(), "sigma": np.maximum(d.sigma.numpy(), 1e-3),
    }
    for i, op in enumerate(JITTER_OPS):
        feed[op] = d.factors[:, i].numpy()
        for k in range(4):
            feed[f"{op}_at_{k}"] = jitter & (d.order[:, k].numpy() == i)
    return {name: np.ascontiguousarray(value) for name, value in feed.items()}  # DALI reads dense arrays only


def original_feed(original: OriginalView, heights: np.ndarray, widths: np.ndarray) -> dict[str, np.ndarray]:
    """Resize target "size" [B, 2] (h, w) and centre-crop "anchor" [B, 2] (x, y), as torchvision's
    Resize (shorter side) and CenterCrop compute them."""
    height, width = heights.astype(np.int64), widths.astype(np.int64)
    if original.resize is not None:
        short, long = np.minimum(height, width), np.maximum(height, width)
        new_long = (original.resize * long / short).astype(np.int64)  # torchvision truncates
        taller = height > width
        height, width = np.where(taller, new_long, original.resize), np.where(taller, original.resize, new_long)
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
    image: DataNode, policy: ViewPolicy, feed: Mapping[str, DataNode], mean: Sequence[float], std: Sequence[float],
    on_gpu: bool,
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


def make_original(image: DataNode, original: OriginalView, feed: Mapping[str, DataNode]) -> DataNode:
    """The un-augmented view: torchvision's Resize(shorter side) + CenterCrop, as uint8 CHW levels
    (the method's batch stage normalises it, `methods/batch_stage.py`)."""
    if original.resize is not None:
        image = fn.resize(image, size=feed["size"], antialias=True, interp_type=types.INTERP_LINEAR)
    if original.center_crop is not None:
        image = fn.slice(
            image, feed["anchor"], feed["shape"], axis_names="WH", normalized_anchor=False,
            normalized_shape=False, out_of_bounds_policy="pad",
        )
    return fn.transpose(image, perm=[2, 0, 1])
