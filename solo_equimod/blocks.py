"""The public building blocks, for your own training loop (no Hydra, no config files).

    from solo_equimod.blocks import ViewPolicy, ParamViews, BatchedViews, make_objective

- `ViewPolicy`: how one view is drawn (crop, flip, colour jitter, grayscale, blur, solarize);
- `ParamViews`: per image, for any image dataset: `image -> (views, params)` (and the original);
- `normalize`: uint8 images -> the normalised float input of a backbone;
- `BatchedViews`: a uint8 batch on any device -> `(views, params)` at once;
- `make_objective(name, features_dim, policies, **settings)`: EquiMod, CARE, AugSelf, rotation or
  transform prediction as a module, called as `objective(batch, feats)` on the batch's named inputs
  (`{"views", "params", "image_size", "original", "extras"}`) and their backbone features;
- the losses (`EquiModLoss`, `CARELoss`, `SIELoss`) and heads as modules.

Every name here is a thin constructor over what the pretraining pipeline itself runs, so a loop
written with them computes what `main_pretrain.py` computes. See `examples/` and
`docs/guide/own-code.md`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from omegaconf import OmegaConf
from PIL import Image

from solo_equimod.augment.batched_applier import apply_batch
from solo_equimod.augment.params import AugmentationLayout
from solo_equimod.augment.pipeline import OriginalView, ParamPretrainTransform, normalize
from solo_equimod.augment.policy import ViewPolicy, layout_for
from solo_equimod.augment.sampler import sample_views
from solo_equimod.losses.modules import CARELoss, EquiModLoss, SIELoss
from solo_equimod.methods.sie_heads import HypernetPredictor, sie_projector
from solo_equimod.objectives import OBJECTIVES, Objective, ObjectiveContext
from solo_equimod.objectives.augself import augself_head
from solo_equimod.objectives.compose import objective_settings
from solo_equimod.objectives.equimod import ParamNormalizer, equivariance_head, param_encoder
from solo_equimod.objectives.rotation import rotation_head

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ParamViews:
    """A dataset transform: image (PIL or uint8 CHW tensor) -> `(views, params)`, one normalised view
    and one raw Appendix A.1 parameter vector per policy; `(views, params, original)` with
    `original=True` (EquiMod predicts the views from the un-augmented image), the original normalised,
    or as uint8 levels with `original_levels=True` (CARE makes its views from them on the device; then
    `normalize` what you encode). Pass it as any torchvision dataset's `transform`."""

    def __init__(self, policies: Sequence[ViewPolicy], mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, original: bool = False,
                 original_view: OriginalView = OriginalView(),
                 extras: Mapping[str, Callable[[torch.Tensor], Any]] | None = None,
                 original_levels: bool = False) -> None:
        self.pipeline = ParamPretrainTransform(policies, mean, std, original_view, with_original=original,
                                               extras=extras)
        self.layout: AugmentationLayout = self.pipeline.layout
        self.with_original, self.original_levels = original, original_levels

    def __call__(self, image: Image.Image | torch.Tensor) -> tuple[Any, ...]:
        sample = self.pipeline(image)
        out = (sample["views"], sample["params"])
        if self.with_original:  # the pipeline's original is uint8 levels
            original = sample["original"]
            out += (original if self.original_levels else self.pipeline.normalize(original),)
        return out + ((sample["extras"],) if self.pipeline.extras else ())

    def sample_param_vectors(self, image_sizes: Sequence[tuple[int, int]], count: int, seed: int = 0) -> torch.Tensor:
        """A seeded (count, dim) sample of raw parameter vectors over these (height, width) sizes."""
        return self.pipeline.sample_param_vectors(image_sizes, count, seed)


class BatchedViews:
    """A batch transform: uint8 (B, 3, H, W) images on any device -> `(views, params)`, each view
    (B, 3, S, S) normalised and each `params` (B, dim) raw Appendix A.1 vectors, on that device.
    The views equal the per-image path's for the same parameters (`augment/batched_applier.py`)."""

    def __init__(self, policies: Sequence[ViewPolicy], mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        self.policies, self.mean, self.std = list(policies), list(mean), list(std)
        self.layout: AugmentationLayout = layout_for(self.policies)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> normalised float (the un-augmented original of EquiMod)."""
        return normalize(images, self.mean, self.std)

    def __call__(self, images: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"BatchedViews takes uint8 (B, 3, H, W) images, got {images.dtype} {tuple(images.shape)}")
        b, _, height, width = images.shape
        views, params = [], []
        for policy in self.policies:
            drawn = sample_views(policy, torch.full((b,), height), torch.full((b,), width), generator)
            views.append(self.normalize(apply_batch(images, drawn, policy)))
            params.append(self.layout.encode_batch(drawn).to(images.device))
        return views, params


def policy_entry(policy: ViewPolicy) -> dict[str, Any]:
    """The `augmentations` config entry of one view (the inverse of `policy_from_config`)."""
    if policy.crop_ratio != ViewPolicy.crop_ratio:
        raise ValueError(f"crop_ratio={policy.crop_ratio} has no config key; objectives are built for the "
                         f"default {ViewPolicy.crop_ratio}")
    return {"rrc": {"enabled": policy.rrc_enabled, "crop_min_scale": policy.crop_min_scale,
                    "crop_max_scale": policy.crop_max_scale, "interpolation": policy.interpolation},
            "color_jitter": {"prob": policy.jitter_prob, "brightness": policy.brightness, "contrast": policy.contrast,
                             "saturation": policy.saturation, "hue": policy.hue},
            "grayscale": {"prob": policy.gray_prob},
            "gaussian_blur": {"prob": policy.blur_prob, "sigma_min": policy.sigma_min, "sigma_max": policy.sigma_max,
                              "kernel_size": policy.blur_kernel_size},
            "solarization": {"prob": policy.solarize_prob, "threshold": policy.solarize_threshold},
            "horizontal_flip": {"prob": policy.flip_prob}, "crop_size": policy.crop_size, "num_crops": 1}


def make_objective(name: str, features_dim: int, policies: Sequence[ViewPolicy], *, dataset: str = "custom",
                   batch_size: int = 256, embed: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   gather_distributed: bool = False, **settings: Any) -> Objective:
    """Objective `name` (one of `OBJECTIVES`) with keyword `settings` over its declared defaults (an
    unknown or invalid one is a ConfigError naming it, `python -m solo_equimod.reference NAME` lists
    them). `policies`: the two views' policies; `dataset`: whose mean/std the objective's per-image
    inputs use (rotation, transform prediction; `custom`: ImageNet's); `batch_size`: images per step
    (CARE checks its chunks against it); `embed`: the invariance head z = embed(h) (CARE's `head="method"`)."""
    cfg = OmegaConf.create({"method": "custom", "data": {"dataset": dataset},
                            "augmentations": [policy_entry(p) for p in policies],
                            "optimizer": {"batch_size": batch_size}})
    parsed = objective_settings(name, settings, cfg)
    return OBJECTIVES[name](parsed, ObjectiveContext(cfg, features_dim, gather_distributed, embed))


class _ParamSample:
    """What `Objective.prepare` reads from the training data: seeded parameter vectors."""

    def __init__(self, views: ParamViews, image_sizes: Sequence[tuple[int, int]]) -> None:
        self.views, self.image_sizes = views, list(image_sizes)

    def sample_param_vectors(self, count: int, seed: int) -> torch.Tensor:
        return self.views.sample_param_vectors(self.image_sizes, count, seed)


def prepare_objective(objective: Objective, views: ParamViews, image_sizes: Sequence[tuple[int, int]]) -> None:
    """Let an objective prepare itself before training as the pipeline does (EquiMod: the mean and
    std of the parameter vectors, Appendix A.1), from `views`' sampler over the data's image sizes."""
    objective.prepare(_ParamSample(views, image_sizes))


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "OBJECTIVES", "BatchedViews", "CARELoss", "EquiModLoss",
           "HypernetPredictor", "Objective", "OriginalView", "AugmentationLayout", "ParamNormalizer", "ParamViews",
           "SIELoss", "ViewPolicy", "augself_head", "equivariance_head", "make_objective", "normalize",
           "param_encoder", "policy_entry", "prepare_objective", "rotation_head", "sie_projector"]
