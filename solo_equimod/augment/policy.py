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
from typing import Any, Mapping, Optional, Sequence

from omegaconf import MISSING, DictConfig, OmegaConf

from solo_equimod.augment.params import AugmentationLayout
from solo_equimod.config.components import COMPONENTS
from solo_equimod.config.settings import Settings, parse_settings, setting
from solo_equimod.errors import ConfigError

INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic")
PROBABILITY = {"ge": 0.0, "le": 1.0}


@dataclass
class RandomResizedCropSettings(Settings):
    enabled: bool = setting(True, "crop a random area and aspect ratio, resized to crop_size (false: resize only)")
    crop_min_scale: float = setting(0.08, "smallest crop area, as a fraction of the image", source="torchvision",
                                    gt=0, le=1)
    crop_max_scale: float = setting(1.0, "largest crop area, as a fraction of the image", source="torchvision",
                                    gt=0, le=1)
    interpolation: str = setting("bilinear", "of the crop's resize (the official EquiMod code: bicubic)",
                                 source="torchvision's default", choices=INTERPOLATIONS)

    def check(self, cfg: DictConfig) -> None:
        if self.crop_min_scale > self.crop_max_scale:
            raise ConfigError(f"crop_min_scale={self.crop_min_scale} > crop_max_scale={self.crop_max_scale}: "
                              f"the scale range must satisfy crop_min_scale <= crop_max_scale")


@dataclass
class ColorJitterSettings(Settings):
    prob: float = setting(0.0, "probability of colour jitter", **PROBABILITY)
    brightness: float = setting(0.0, "strength s: factor drawn in [max(0, 1 - s), 1 + s]", source="torchvision", ge=0)
    contrast: float = setting(0.0, "strength s: factor drawn in [max(0, 1 - s), 1 + s]", source="torchvision", ge=0)
    saturation: float = setting(0.0, "strength s: factor drawn in [max(0, 1 - s), 1 + s]", source="torchvision", ge=0)
    hue: float = setting(0.0, "strength h: shift drawn in [-h, h]", source="torchvision", ge=0, le=0.5)


@dataclass
class GrayscaleSettings(Settings):
    prob: float = setting(0.0, "probability of grayscale", **PROBABILITY)


@dataclass
class GaussianBlurSettings(Settings):
    prob: float = setting(0.0, "probability of Gaussian blur", **PROBABILITY)
    sigma_min: float = setting(0.1, "smallest sigma", source="SimCLR", gt=0)
    sigma_max: float = setting(2.0, "largest sigma", source="SimCLR", gt=0)
    kernel_size: Optional[int] = setting(None, "odd kernel side in pixels (null: the odd size nearest 10% of "
                                         "crop_size, as SimCLR)", source="SimCLR", ge=1)

    def check(self, cfg: DictConfig) -> None:
        if self.sigma_min > self.sigma_max:
            raise ConfigError(f"sigma_min={self.sigma_min} > sigma_max={self.sigma_max}: "
                              f"must satisfy sigma_min <= sigma_max")
        if self.kernel_size is not None and self.kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size={self.kernel_size} is invalid: must be an odd number of "
                              f"pixels, or null for the odd size nearest 10% of crop_size")


@dataclass
class SolarizationSettings(Settings):
    prob: float = setting(0.0, "probability of solarisation", **PROBABILITY)
    threshold: float = setting(0.5, "pixels above this fraction of the range are inverted", source="BYOL",
                               **PROBABILITY)


@dataclass
class HorizontalFlipSettings(Settings):
    prob: float = setting(0.5, "probability of a horizontal flip", **PROBABILITY)


@dataclass
class AugmentationSettings(Settings):
    """One `augmentations` entry: a pipeline and how many views it makes."""

    rrc: RandomResizedCropSettings = setting(RandomResizedCropSettings(), "random resized crop")
    color_jitter: ColorJitterSettings = setting(ColorJitterSettings(), "colour jitter, in a random order")
    grayscale: GrayscaleSettings = setting(GrayscaleSettings(), "grayscale")
    gaussian_blur: GaussianBlurSettings = setting(GaussianBlurSettings(), "Gaussian blur")
    solarization: SolarizationSettings = setting(SolarizationSettings(), "solarisation")
    horizontal_flip: HorizontalFlipSettings = setting(HorizontalFlipSettings(), "horizontal flip")
    crop_size: int = setting(MISSING, "side of the view in pixels", ge=1)
    num_crops: int = setting(1, "views this entry makes", ge=1)


@dataclass(frozen=True)
class ViewPolicy:
    """How one view is sampled. Probabilities in [0, 1]; jitter strengths as torchvision's ColorJitter;
    built from a checked `AugmentationSettings` (`policy_from_config`)."""

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

    @property
    def kernel_size(self) -> int:
        if self.blur_kernel_size is not None:
            return self.blur_kernel_size
        k = max(3, int(round(0.1 * self.crop_size)))
        return k if k % 2 == 1 else k + 1


def policy_from_config(entry: Mapping[str, Any], where: str = "augmentations[0]") -> tuple[ViewPolicy, int]:
    """One `augmentations` list entry -> (policy, num_crops); a ConfigError names the key as `where.key`."""
    s = parse_settings(AugmentationSettings, entry, where, OmegaConf.create())  # its checks need no other setting
    rrc, jitter, blur = s.rrc, s.color_jitter, s.gaussian_blur
    policy = ViewPolicy(
        crop_size=s.crop_size, crop_min_scale=rrc.crop_min_scale, crop_max_scale=rrc.crop_max_scale,
        rrc_enabled=rrc.enabled, interpolation=rrc.interpolation, flip_prob=s.horizontal_flip.prob,
        jitter_prob=jitter.prob, brightness=jitter.brightness, contrast=jitter.contrast, saturation=jitter.saturation,
        hue=jitter.hue, gray_prob=s.grayscale.prob, blur_prob=blur.prob, sigma_min=blur.sigma_min,
        sigma_max=blur.sigma_max, blur_kernel_size=blur.kernel_size, solarize_prob=s.solarization.prob,
        solarize_threshold=s.solarization.threshold)
    return policy, s.num_crops


def policies_from_config(entries: Sequence[Mapping[str, Any]]) -> list[ViewPolicy]:
    """The `augmentations` list -> one policy per view (entries repeated `num_crops` times)."""
    views: list[ViewPolicy] = []
    for i, entry in enumerate(entries):
        policy, num_crops = policy_from_config(entry, f"augmentations[{i}]")
        views += [policy] * num_crops
    if len(views) != 2:
        raise ConfigError(f"augmentations: pretraining needs exactly 2 views (sum of num_crops), the entries give "
                          f"{len(views)}")
    return views


def check_augmentations(cfg: DictConfig) -> None:
    """The `augmentations` entries of a validated pretraining config (`policies_from_config`'s checks)."""
    policies_from_config(cfg.augmentations)


# the configuration declares an `augmentations` entry and checks the entries through these
COMPONENTS.augmentation = AugmentationSettings
COMPONENTS.checks["augmentations"] = check_augmentations


def layout_for(policies: Sequence[ViewPolicy]) -> AugmentationLayout:
    """The Appendix A.1 layout: an augmentation is encoded when any view can apply it."""
    return AugmentationLayout(
        flip=any(p.flip_prob > 0 for p in policies),
        jitter=any(p.jitter_prob > 0 for p in policies),
        gray=any(p.gray_prob > 0 for p in policies),
        blur=any(p.blur_prob > 0 for p in policies),
        solarize=any(p.solarize_prob > 0 for p in policies),
    )
