"""Apply the parameters of B views to a batch of uint8 images at once, on the images' device.

The same views as `apply_view_params` (torchvision v2 on one uint8 image), in the same order:
resized crop, horizontal flip, colour jitter in each sample's own order, grayscale, Gaussian blur,
solarize, with torchvision's uint8 arithmetic (each colour operation truncates to integers; contrast
blends with the mean of the floored grayscale, saturation with the floored grayscale; hue shifts in
HSV and scales back by 255.999; blur rounds). No library applies a per-sample jitter order to a
batch (kornia draws one order per batch, torchvision one parameter set per call), hence this module.

The resized crop of sample b is the linear map `Wy_b @ image_b @ Wx_b^T`, whose rows are the
antialiased interpolation weights torch's `interpolate(antialias=True)` uses (PIL's separable
filters: triangle for bilinear, Keys a=-0.5 for bicubic, widened by the scale when downsampling),
zero outside the crop: so the per-sample crops of different sizes are two batched matrix products.
Float images and GPU resizes in torchvision skip the intermediate uint8 rounding; we keep it
everywhere, so a view is the same on every device.

`apply_batch` computes in float32 with autocast off (`solo_equimod.precision.float32_region`),
whatever the caller's context: CARE draws its views inside the training step, where mixed precision
would run the resize products in bfloat16 / float16 (which hold 0..255 levels only to 2-3 digits)
and mix dtypes in the per-row updates. Under autocast a view is exactly the view without it.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as nnf

from solo_equimod.augment.params import JITTER_OPS, BatchViewParams
from solo_equimod.augment.per_image_applier import color_shift
from solo_equimod.augment.policy import ViewPolicy
from solo_equimod.precision import float32_region

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale
_SUPPORT = {"bilinear": 1.0, "bicubic": 2.0}  # half the filter width at scale 1
TABLE_LIMIT = 2**24  # weights of every window of an input are tabulated up to this many floats (64 MB)


def _filter(x: torch.Tensor, interpolation: str) -> torch.Tensor:
    x = x.abs()
    if interpolation == "bilinear":
        return (1.0 - x).clamp_min(0.0)
    a = -0.5  # PIL's and torch's antialiased bicubic
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return torch.where(x < 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


def resize_weights(start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int,
                   interpolation: str) -> torch.Tensor:
    """(B, out_size, in_size) weights mapping input rows to the output rows of the resized window
    [start, start + length) of each sample, as torch's antialiased interpolation computes them."""
    scale = (length.float() / out_size)[:, None]  # (B, 1)
    support = _SUPPORT[interpolation] * scale.clamp_min(1.0)
    inv_scale = 1.0 / scale.clamp_min(1.0)
    center = scale * (torch.arange(out_size, dtype=torch.float32, device=start.device) + 0.5)  # (B, out)
    first = torch.trunc(center - support + 0.5).clamp_min(0.0)
    stop = torch.minimum(torch.trunc(center + support + 0.5), length.float()[:, None])
    j = torch.arange(in_size, dtype=torch.float32, device=start.device)[None, None, :] - start.float()[:, None, None]
    weights = _filter((j - center[..., None] + 0.5) * inv_scale[..., None], interpolation)
    weights = weights * ((j >= first[..., None]) & (j < stop[..., None]))
    return weights / weights.sum(-1, keepdim=True)


@functools.lru_cache(maxsize=8)
def _weight_table(in_size: int, out_size: int, interpolation: str, device: torch.device) -> torch.Tensor:
    """`resize_weights` of every window (start, length) of a small input, indexed by start * (in_size + 1) + length."""
    start, length = torch.meshgrid(torch.arange(in_size), torch.arange(in_size + 1), indexing="ij")
    return resize_weights(start.flatten().to(device), length.flatten().clamp_min(1).to(device), in_size, out_size,
                          interpolation)


def _weights(start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int, interpolation: str) -> torch.Tensor:
    if in_size * (in_size + 1) * in_size * out_size <= TABLE_LIMIT:  # CIFAR-size inputs: look the rows up
        return _weight_table(in_size, out_size, interpolation, start.device)[start * (in_size + 1) + length]
    return resize_weights(start, length, in_size, out_size, interpolation)


def resized_crop(images: torch.Tensor, crop: torch.Tensor, size: int, interpolation: str) -> torch.Tensor:
    """uint8 (B, C, H, W) and windows (B, 4) x, y, w, h -> float (B, C, size, size), rounded to levels."""
    b, c, height, width = images.shape
    crop = crop.to(images.device)
    rows = _weights(crop[:, 1], crop[:, 3], height, size, interpolation)  # (B, size, H)
    cols = _weights(crop[:, 0], crop[:, 2], width, size, interpolation)  # (B, size, W)
    # horizontal pass, rounded to uint8 levels, then vertical: torchvision's uint8 resize on CPU (and
    # PIL) store the intermediate image as uint8, which clips bicubic overshoot (up to 9 levels)
    out = torch.bmm(images.float().reshape(b, c * height, width), cols.transpose(1, 2)).round_().clamp_(0.0, 255.0)
    out = torch.bmm(rows, out.reshape(b, c, height, size).transpose(1, 2).reshape(b, height, c * size))
    return out.reshape(b, size, c, size).transpose(1, 2).round_().clamp_(0.0, 255.0)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, h, w) levels -> (N, 1, h, w) floored luma, as torchvision's rgb_to_grayscale on uint8."""
    r, g, b = x.unbind(1)
    return (r * GRAY_WEIGHTS[0] + g * GRAY_WEIGHTS[1] + b * GRAY_WEIGHTS[2]).floor_()[:, None]


def _blend(x: torch.Tensor, other: torch.Tensor | float, factor: torch.Tensor) -> torch.Tensor:
    return (x * factor + other * (1.0 - factor)).clamp_(0.0, 255.0).floor_()  # uint8 truncation


def _brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(x, 0.0, factor)


def _contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(x, _gray(x).mean(dim=(1, 2, 3), keepdim=True), factor)


def _saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(x, _gray(x), factor)


def _hue(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's adjust_hue: RGB -> HSV, hue + factor (mod 1), HSV -> RGB, x 255.999 truncated.
    With hi = V and lo = V (1 - S) kept, channel n in (5, 3, 1) is hi - (hi - lo) clamp(min(k, 4 - k), 0, 1)
    for k = (n + 6 hue) mod 6, the closed form of torchvision's six-sector HSV -> RGB."""
    r, g, b = x.unbind(1)
    hi, lo = x.amax(1), x.amin(1)
    span = hi - lo
    div = torch.where(span == 0, torch.ones_like(span), span)
    hue6 = torch.where(hi == r, (g - b) / div, torch.where(hi == g, 2.0 + (b - r) / div, 4.0 + (r - g) / div))
    hue6 = torch.remainder(hue6 + 6.0 * factor[:, 0], 6.0)
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(hue6 + n, 6.0)
        channels.append(hi - span * torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0))
    return (torch.stack(channels, dim=1) * (255.999 / 255.0)).floor_()


_JITTER_FNS = {"brightness": _brightness, "contrast": _contrast, "saturation": _saturation, "hue": _hue}


def _on_rows(x: torch.Tensor, mask: torch.Tensor, fn, *args: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """`fn` applied to the rows where `mask` holds (with those rows of `args`), the others kept."""
    rows = mask.nonzero()[:, 0]
    if len(rows):
        x[rows] = fn(x[rows], *(a[rows] for a in args))
    return x


def _blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """torchvision's gaussian_blur with each sample's own sigma: reflect padding, rounded levels."""
    n, c, h, w = x.shape
    offsets = torch.arange(kernel_size, device=x.device, dtype=torch.float32) - (kernel_size - 1) / 2
    kernel = torch.softmax(-(offsets[None, :] / sigma[:, None]) ** 2 / 2, dim=1)  # (n, k), sums to 1
    kernel = kernel.repeat_interleave(c, dim=0)[:, None]  # (n * c, 1, k): one per sample and channel
    pad = kernel_size // 2
    y = nnf.pad(x.reshape(1, n * c, h, w), [pad, pad, pad, pad], mode="reflect")
    y = nnf.conv2d(y, kernel[..., None], groups=n * c)  # vertical pass
    y = nnf.conv2d(y, kernel[:, :, None, :], groups=n * c)  # horizontal pass
    return y.reshape(n, c, h, w).round_()


def _jitter(x: torch.Tensor, p: BatchViewParams, policy: ViewPolicy) -> torch.Tensor:
    """Colour jitter of float levels, each row in its own order (rows without jitter unchanged)."""
    factors = p.factors[:, :, None, None, None]  # (B, 4, 1, 1, 1): one factor per operation
    for position in range(4):
        for i, op in enumerate(JITTER_OPS):
            if policy.jitter_prob > 0 and getattr(policy, op) > 0:  # as ColorJitter, strength 0 is skipped
                x = _on_rows(x, p.jitter & (p.order[:, position] == i), _JITTER_FNS[op], factors[:, i])
    return x


def _after_jitter(x: torch.Tensor, p: BatchViewParams, policy: ViewPolicy) -> torch.Tensor:
    """Grayscale, Gaussian blur and solarize of float levels, where each row applies them."""
    if policy.gray_prob > 0:
        x = _on_rows(x, p.gray, lambda v: _gray(v).expand(-1, 3, -1, -1))
    if policy.blur_prob > 0:
        x = _on_rows(x, p.blur, lambda v, s: _blur(v, s, policy.kernel_size), p.sigma)
    if policy.solarize_prob > 0:
        threshold = policy.solarize_threshold * 255.0
        x = _on_rows(x, p.solarize, lambda v: torch.where(v >= threshold, 255.0 - v, v))
    return x


def _crop_and_flip(images: torch.Tensor, p: BatchViewParams, policy: ViewPolicy) -> torch.Tensor:
    x = resized_crop(images, p.crop, policy.crop_size, policy.interpolation)
    return torch.where(p.flip[:, None, None, None], x.flip(-1), x)


@float32_region
def apply_batch(images: torch.Tensor, params: BatchViewParams, policy: ViewPolicy) -> torch.Tensor:
    """uint8 (B, 3, H, W) images -> uint8 (B, 3, S, S) views (S = `policy.crop_size`), on the images'
    device; view b equals `apply_view_params(images[b], params.row(b), policy)` up to float rounding.
    Computed in float32 with autocast disabled, so the same under mixed precision as without."""
    p = params.to(images.device)
    return _after_jitter(_jitter(_crop_and_flip(images, p, policy), p, policy), p, policy).to(torch.uint8)


@float32_region
def apply_batch_and_shift(images: torch.Tensor, params: BatchViewParams,
                          policy: ViewPolicy) -> tuple[torch.Tensor, torch.Tensor]:
    """`apply_batch` and each view's colour shift across jitter, (B, 3) float32: its channels' mean
    levels before minus after colour jitter, / 255 (`apply.color_shift`; 0 where jitter is off)."""
    p = params.to(images.device)
    before = _crop_and_flip(images, p, policy)
    jittered = _jitter(before.clone(), p, policy)  # _on_rows writes in place
    shift = color_shift(before, jittered)
    return _after_jitter(jittered, p, policy).to(torch.uint8), shift
