"""Per-view augmentation policy, read from solo-learn-style `augmentations` config entries.

One entry describes one pipeline and how many views (`num_crops`) it makes:

    - rrc: {enabled: true, crop_min_scale: 0.08, crop_max_scale: 1.0, interpolation: bilinear}
      color_jitter: {prob: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1}
      grayscale: {prob: 0.2}
      gaussian_blur: {prob: 0.0, sigma_min: 0.1, sigma_max: 2.0}
      solarization: {prob: 0.0}
      horizontal_flip: {prob: 0.5}
      crop_size: 32
      num_crops: 2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from solo_equimod.augment.params import ParamLayout

INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic")
_KNOWN_KEYS = {
    "rrc", "color_jitter", "grayscale", "gaussian_blur", "solarization", "horizontal_flip",
    "crop_size", "num_crops",
}


@dataclass(frozen=True)
class ViewPolicy:
    """How one view is sampled. Probabilities in [0, 1]; jitter strengths as torchvision's ColorJitter."""

    crop_size: int = 32
    crop_min_scale: float = 0.08
    crop_max_scale: float = 1.0
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    rrc_enabled: bool = True
    interpolation: str = "bilinear"  # of the crop's resize: bilinear (torchvision's default) or bicubic
    flip_prob: float = 0.5
    jitter_prob: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    gray_prob: float = 0.2
    blur_prob: float = 0.0
    sigma_min: float = 0.1
    sigma_max: float = 2.0
    blur_kernel_size: int | None = None  # None: odd number nearest to 10% of crop_size, as SimCLR
    solarize_prob: float = 0.0
    solarize_threshold: float = 0.5  # fraction of the pixel range, BYOL's value

    def __post_init__(self) -> None:
        for name in ("flip_prob", "jitter_prob", "gray_prob", "blur_prob", "solarize_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"augmentation probability {name}={value} must lie in [0, 1]")
        if not 0 < self.crop_min_scale <= self.crop_max_scale <= 1.0:
            raise ValueError(
                f"rrc scales must satisfy 0 < crop_min_scale <= crop_max_scale <= 1, got "
                f"({self.crop_min_scale}, {self.crop_max_scale})"
            )
        if self.crop_size < 1:
            raise ValueError(f"crop_size must be a positive integer, got {self.crop_size}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"rrc.interpolation={self.interpolation!r}; valid: {list(INTERPOLATIONS)}")

    @property
    def kernel_size(self) -> int:
        if self.blur_kernel_size is not None:
            return self.blur_kernel_size
        k = max(3, int(round(0.1 * self.crop_size)))
        return k if k % 2 == 1 else k + 1


def _section(entry: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = entry.get(key) or {}
    if not isinstance(value, Mapping):
        raise TypeError(f"augmentations.{key} must be a mapping, got {type(value).__name__}")
    return value


# ViewPolicy field -> (section of an augmentations entry, key in it, default)
_FLOAT_FIELDS: dict[str, tuple[str, str, float]] = {
    "crop_min_scale": ("rrc", "crop_min_scale", 0.08), "crop_max_scale": ("rrc", "crop_max_scale", 1.0),
    "flip_prob": ("horizontal_flip", "prob", 0.5), "jitter_prob": ("color_jitter", "prob", 0.0),
    "brightness": ("color_jitter", "brightness", 0.0), "contrast": ("color_jitter", "contrast", 0.0),
    "saturation": ("color_jitter", "saturation", 0.0), "hue": ("color_jitter", "hue", 0.0),
    "gray_prob": ("grayscale", "prob", 0.0), "blur_prob": ("gaussian_blur", "prob", 0.0),
    "sigma_min": ("gaussian_blur", "sigma_min", 0.1), "sigma_max": ("gaussian_blur", "sigma_max", 2.0),
    "solarize_prob": ("solarization", "prob", 0.0), "solarize_threshold": ("solarization", "threshold", 0.5),
}


def policy_from_config(entry: Mapping[str, Any]) -> tuple[ViewPolicy, int]:
    """One `augmentations` list entry -> (policy, num_crops)."""
    unknown = set(entry) - _KNOWN_KEYS
    if unknown:
        raise KeyError(f"unknown key(s) {sorted(unknown)} in an augmentations entry; valid: {sorted(_KNOWN_KEYS)}")
    if "crop_size" not in entry:
        raise KeyError("augmentations entry needs 'crop_size' (output side length in pixels)")
    values = {name: float(_section(entry, section).get(key, default))
              for name, (section, key, default) in _FLOAT_FIELDS.items()}
    rrc, blur = _section(entry, "rrc"), _section(entry, "gaussian_blur")
    policy = ViewPolicy(crop_size=int(entry["crop_size"]), rrc_enabled=bool(rrc.get("enabled", True)),
                        interpolation=str(rrc.get("interpolation", "bilinear")), blur_kernel_size=blur.get("kernel_size"),
                        **values)
    return policy, int(entry.get("num_crops", 1))


def policies_from_config(entries: Sequence[Mapping[str, Any]]) -> list[ViewPolicy]:
    """The `augmentations` list -> one policy per view (entries repeated `num_crops` times)."""
    views: list[ViewPolicy] = []
    for entry in entries:
        policy, num_crops = policy_from_config(entry)
        views += [policy] * num_crops
    if len(views) != 2:
        raise ValueError(f"pretraining needs exactly 2 views (sum of num_crops), the augmentations give {len(views)}")
    return views


def layout_for(policies: Sequence[ViewPolicy]) -> ParamLayout:
    """The Appendix A.1 layout: an augmentation is encoded when any view can apply it."""
    return ParamLayout(
        flip=any(p.flip_prob > 0 for p in policies),
        jitter=any(p.jitter_prob > 0 for p in policies),
        gray=any(p.gray_prob > 0 for p in policies),
        blur=any(p.blur_prob > 0 for p in policies),
        solarize=any(p.solarize_prob > 0 for p in policies),
    )
