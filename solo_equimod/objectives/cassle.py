"""CASSLE (Przewięźlikowski et al., KBS 2024, arXiv 2306.06082; mprzewie/AugSelf pretrain_cond.py,
cond_utils.py, transforms.py): the method's projector, and a momentum method's target projector,
reads [h ; e(d)], a view's backbone features next to an embedding e of that view's augmentation
descriptor d, instead of h. The method's loss is unchanged; to use the conditioning, the backbone
must keep what the augmentations did (the paper's argument), and the projector is discarded after.

The descriptor of one view (transforms.py extract_aug_descriptors), zeros where an augmentation was
not applied, its parts concatenated in alphabetical order (trainers_cond.py: `sorted(aug_cond)`):

    blur (1)        sigma
    color (4)       (b - 1), (c - 1), (s - 1) over the width of each factor's range; hue over its range's
    color_diff (3)  each channel's mean intensity in [0, 1] before minus after colour jitter
    crop (4)        centre y, centre x (1 - x when flipped), height, width, relative to the input image
    flip (1)        flipped (the official code has it; not in the paper's set)
    grayscale (1)   grayscale applied

The paper's set `crop color color_diff blur grayscale` (README) is 13 numbers. e is cond_utils.py's
`load_mlp(13, 64, 64, num_layers=6)`: five Linear (no bias) - BN - ReLU, a Linear (no bias) and an
affine BN; the head's input is [h ; e(d)] (`--aug-inj-type proj-cat`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from lightly.models.modules.heads import ProjectionHead
from omegaconf import DictConfig
from torch import nn

from solo_equimod.augment.policy import layout_for, policies_from_config
from solo_equimod.config.settings import Settings, setting
from solo_equimod.data.batch import Batch
from solo_equimod.data.param_spec import param_spec
from solo_equimod.errors import ConfigError
from solo_equimod.objectives.augself import color_code, crop_centre_size, crop_code, flipped
from solo_equimod.objectives.base import ConditionerSettings, HeadConditioner, ObjectiveContext

# the descriptor's parts and their widths (cond_utils.py AUG_DESC_SIZE_CONFIG)
DESCRIPTOR_PARTS: dict[str, int] = {"blur": 1, "color": 4, "color_diff": 3, "crop": 4, "flip": 1, "grayscale": 1}
PAPER_PARTS = ["blur", "color", "color_diff", "crop", "grayscale"]
ENCODERS = ("mlp", "raw")


def descriptor_encoder(descriptor_dim: int, width: int, depth: int) -> nn.Module:
    """cond_utils.py's `load_mlp(descriptor_dim, width, width, depth)` (last_bn=True, affine): depth - 1
    Linear (no bias) - BN - ReLU blocks, then a Linear (no bias) and a BN."""
    sizes = [descriptor_dim] + [width] * (depth - 1)
    return ProjectionHead([(sizes[i], width, nn.BatchNorm1d(width), nn.ReLU()) for i in range(depth - 1)]
                          + [(sizes[-1], width, nn.BatchNorm1d(width), None)])


class ConditionedHead(nn.Module):
    """A head that reads [h ; d]: `head([h ; encoder(d)])`, the last `descriptor_dim` columns being
    the raw descriptor d (cond_utils.py AugProjector, proj-cat). A deep copy (a momentum target)
    copies the encoder with it, as the official target projector does."""

    def __init__(self, head: nn.Module, encoder: nn.Module, descriptor_dim: int) -> None:
        super().__init__()
        self.head, self.encoder, self.descriptor_dim = head, encoder, descriptor_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, d = x.split([x.shape[1] - self.descriptor_dim, self.descriptor_dim], dim=1)
        return self.head(torch.cat([h, self.encoder(d)], dim=1))


@dataclass
class CASSLESettings(ConditionerSettings):
    conditions: list[str] = setting(list(PAPER_PARTS), "the descriptor's parts (any of blur, color, color_diff, "
                                    "crop, flip, grayscale), concatenated in alphabetical order",
                                    source="official README: --aug-cond crop color color_diff blur grayscale")
    encoder: str = setting("mlp", "mlp: the descriptor's MLP embedding; raw: the descriptor itself",
                           source="official README: --aug-treatment mlp", choices=ENCODERS)
    encoder_depth: int = setting(6, "Linear layers of the descriptor's MLP", source="official README: --aug-nn-depth 6",
                                 ge=1)
    encoder_width: int = setting(64, "hidden and output width of the descriptor's MLP",
                                 source="official README: --aug-nn-width 64", ge=1)

    def check(self, cfg: DictConfig) -> None:
        super().check(cfg)
        unknown = [part for part in self.conditions if part not in DESCRIPTOR_PARTS]
        if unknown or not self.conditions or len(set(self.conditions)) < len(self.conditions):
            raise ConfigError(f"objectives.cassle.conditions={list(self.conditions)} is invalid: a non-empty list of "
                              f"distinct parts, each one of {', '.join(DESCRIPTOR_PARTS)}")
        if param_spec(cfg).relative_to == "first_view":
            raise ConfigError(f"objectives.cassle conditions on each view's augmentation parameters, but "
                              f"data.dataset={cfg.data.dataset!r} gives view pairs with a group element, no "
                              f"augmentation parameters")


class CASSLE(HeadConditioner):
    """Each view's descriptor, and the encoder that embeds it in the method's conditioned heads."""

    SETTINGS: ClassVar[type[Settings]] = CASSLESettings

    def __init__(self, settings: CASSLESettings, context: ObjectiveContext) -> None:
        super().__init__(settings, context)
        self.policies = policies_from_config(context.cfg.augmentations)
        self.layout = layout_for(self.policies)
        self.parts = sorted(settings.conditions)  # trainers_cond.py: sorted(aug_cond)
        self.descriptor_dim = sum(DESCRIPTOR_PARTS[part] for part in self.parts)
        self.embed_dim = settings.encoder_width if settings.encoder == "mlp" else self.descriptor_dim

    @classmethod
    def requested_inputs(cls, settings: CASSLESettings, cfg: DictConfig) -> tuple[str, ...]:  # type: ignore[override]
        return ("color_shift",) if "color_diff" in settings.conditions else ()

    def condition(self, head: nn.Module) -> nn.Module:
        s = self.settings
        encoder = descriptor_encoder(self.descriptor_dim, s.encoder_width, s.encoder_depth) if s.encoder == "mlp" \
            else nn.Identity()
        return ConditionedHead(head, encoder, self.descriptor_dim)

    def descriptor(self, batch: Batch, view: int) -> torch.Tensor:
        """(B, descriptor_dim): the chosen parts of view `view`'s descriptor (module docstring)."""
        params, layout, names = batch["params"][view], self.layout, self.layout.names
        flip = flipped(params, layout)

        def column(name: str) -> torch.Tensor:  # a raw parameter, 0 when the policies cannot apply it
            return params[:, names.index(name)][:, None] if name in names else params.new_zeros(len(params), 1)

        make = {
            "blur": lambda: column("blur_sigma"),  # the raw vector holds 0 where blur was not applied
            "color": lambda: color_code(params, layout, self.policies[view]) if layout.jitter
            else params.new_zeros(len(params), 4),
            "color_diff": lambda: batch["color_shift"][view].to(params),
            "crop": lambda: crop_centre_size(crop_code(params, layout, batch["image_size"]), flip),
            "flip": lambda: flip.to(params)[:, None],
            "grayscale": lambda: column("gray_applied"),
        }
        return torch.cat([make[part]() for part in self.parts], dim=1)
