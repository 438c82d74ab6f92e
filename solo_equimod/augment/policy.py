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
        """Every strength and range checked, named by its `augmentations` config key."""
        for name, key in (("flip_prob", "horizontal_flip.prob"), ("jitter_prob", "color_jitter.prob"),
                          ("gray_prob", "grayscale.prob"), ("blur_prob", "gaussian_blur.prob"),
                          ("solarize_prob", "solarization.prob"), ("solarize_threshold", "solarization.threshold")):
            _require(0.0 <= getattr(self, name) <= 1.0, key, getattr(self, name), "must lie in [0, 1]")
        _require(0 < self.crop_min_scale <= self.crop_max_scale <= 1.0, "rrc.crop_min_scale, rrc.crop_max_scale",
                 (self.crop_min_scale, self.crop_max_scale), "must satisfy 0 < crop_min_scale <= crop_max_scale <= 1")
        _require(0 < self.crop_ratio[0] <= self.crop_ratio[1], "crop_ratio", self.crop_ratio,
                 "must satisfy 0 < low <= high")
        _require(self.crop_size >= 1, "crop_size", self.crop_size, "must be a positive number of pixels")
        _require(self.interpolation in INTERPOLATIONS, "rrc.interpolation", self.interpolation,
                 f"must be one of {list(INTERPOLATIONS)}")
        for name in ("brightness", "contrast", "saturation"):  # torchvision's ColorJitter: factor in [1-s, 1+s]
            _require(getattr(self, name) >= 0, f"color_jitter.{name}", getattr(self, name), "must be >= 0")
        _require(0.0 <= self.hue <= 0.5, "color_jitter.hue", self.hue, "must lie in [0, 0.5]")
        _require(0 < self.sigma_min <= self.sigma_max, "gaussian_blur.sigma_min, gaussian_blur.sigma_max",
                 (self.sigma_min, self.sigma_max), "must satisfy 0 < sigma_min <= sigma_max")
        k = self.blur_kernel_size
        _require(k is None or (k >= 1 and k % 2 == 1), "gaussian_blur.kernel_size", k,
                 "must be an odd positive number of pixels, or null for the odd size nearest 10% of crop_size")

    @property
    def kernel_size(self) -> int:
        if self.blur_kernel_size is not None:
            return self.blur_kernel_size
        k = max(3, int(round(0.1 * self.crop_size)))
        return k if k % 2 == 1 else k + 1


# ViewPolicy field -> (section of the config entry, or None for the entry itself; key; default; type)
_FIELDS: dict[str, tuple[str | None, str, Any, type]] = {
    "crop_size": (None, "crop_size", None, int), "crop_min_scale": ("rrc", "crop_min_scale", 0.08, float),
    "crop_max_scale": ("rrc", "crop_max_scale", 1.0, float), "flip_prob": ("horizontal_flip", "prob", 0.5, float),
    "jitter_prob": ("color_jitter", "prob", 0.0, float), "brightness": ("color_jitter", "brightness", 0.0, float),
    "contrast": ("color_jitter", "contrast", 0.0, float), "saturation": ("color_jitter", "saturation", 0.0, float),
    "hue": ("color_jitter", "hue", 0.0, float), "gray_prob": ("grayscale", "prob", 0.0, float),
    "blur_prob": ("gaussian_blur", "prob", 0.0, float), "sigma_min": ("gaussian_blur", "sigma_min", 0.1, float),
    "sigma_max": ("gaussian_blur", "sigma_max", 2.0, float),
    "blur_kernel_size": ("gaussian_blur", "kernel_size", None, int),
    "solarize_prob": ("solarization", "prob", 0.0, float),
    "solarize_threshold": ("solarization", "threshold", 0.5, float),
}


def _require(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise ValueError(f"{key}={value!r} {rule}")


def _section(entry: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = entry.get(key) or {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{where}.{key} must be a mapping, got {type(value).__name__}")
    return value


def _number(entry: Mapping[str, Any], section: str | None, key: str, default: Any, where: str,
            cast: type = float) -> Any:
    """`entry[section][key]` (or `entry[key]`) as a number, None staying None; else an error
    naming the full key and the value."""
    values = entry if section is None else _section(entry, section, where)
    value = values.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (cast is int and value != int(value)):
        name = key if section is None else f"{section}.{key}"
        raise TypeError(f"{where}.{name}={value!r} must be {'an integer' if cast is int else 'a number'}")
    return cast(value)


def policy_from_config(entry: Mapping[str, Any], where: str = "augmentations[0]") -> tuple[ViewPolicy, int]:
    """One `augmentations` list entry -> (policy, num_crops); errors name the key as `where.key`."""
    unknown = set(entry) - _KNOWN_KEYS
    if unknown:
        raise KeyError(f"unknown key(s) {sorted(unknown)} in {where}; valid: {sorted(_KNOWN_KEYS)}")
    if "crop_size" not in entry:
        raise KeyError(f"{where} needs 'crop_size' (output side length in pixels)")

    numbers = {field: _number(entry, section, key, default, where, cast)
               for field, (section, key, default, cast) in _FIELDS.items()}
    try:
        rrc = _section(entry, "rrc", where)
        policy = ViewPolicy(rrc_enabled=bool(rrc.get("enabled", True)), interpolation=rrc.get("interpolation", "bilinear"),
                            **numbers)
    except ValueError as err:  # ViewPolicy names the key inside the entry
        raise ValueError(f"{where}.{err}") from err
    num_crops = _number(entry, None, "num_crops", 1, where, int)
    _require(num_crops >= 1, f"{where}.num_crops", num_crops, "must be a positive number of views")
    return policy, num_crops


def policies_from_config(entries: Sequence[Mapping[str, Any]]) -> list[ViewPolicy]:
    """The `augmentations` list -> one policy per view (entries repeated `num_crops` times)."""
    views: list[ViewPolicy] = []
    for i, entry in enumerate(entries):
        policy, num_crops = policy_from_config(entry, f"augmentations[{i}]")
        views += [policy] * num_crops
    if len(views) != 2:
        raise ValueError(f"augmentations: pretraining needs exactly 2 views (sum of num_crops), the entries give "
                         f"{len(views)}")
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
