"""E-SSL's four-fold rotation prediction (Dangovski et al., 2021; rdangovs/essl cifar10/main.py) as an
objective: one extra small view per image through the first view's policy (16 px, scale 0.2-1 on
CIFAR; 96 px, scale 0.05-0.14 on ImageNet), in its four rotations with labels 0..3; a head on the
backbone features predicts the rotation; L = L_inv + 0.4 * CE (`weight`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from lightly.models.modules.heads import ProjectionHead
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional as F

from solo_equimod.augment.policy import policies_from_config
from solo_equimod.augment.pretext import policy_variant, rotated_views
from solo_equimod.config.settings import setting
from solo_equimod.data.batch import Batch
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.errors import ConfigError
from solo_equimod.objectives.base import Features, Objective, ObjectiveContext, ObjectiveSettings

HEADS = ("simclr", "simsiam")  # E-SSL's two heads: the SimSiam one has no ReLU after the second LayerNorm


def rotation_head(input_dim: int, hidden_dim: int, variant: str) -> ProjectionHead:
    """E-SSL's `predictor2`: Linear-LayerNorm-ReLU, Linear-LayerNorm-ReLU (no ReLU: `simsiam`), Linear to 4;
    the Linear layers keep their biases (nn.Linear's default there)."""
    second_relu = nn.ReLU() if variant == "simclr" else None
    return ProjectionHead([
        (input_dim, hidden_dim, nn.LayerNorm(hidden_dim), nn.ReLU(), True),
        (hidden_dim, hidden_dim, nn.LayerNorm(hidden_dim), second_relu, True),
        (hidden_dim, 4, None, None, True),
    ])


def rotation_logits_and_labels(head: nn.Module, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the 4N rotated views (rotation k of every image in block k, as E-SSL's `rotate_images`)."""
    logits = head(torch.cat(feats))
    labels = torch.arange(len(feats), device=logits.device).repeat_interleave(feats[0].shape[0])
    return logits, labels


@dataclass
class RotationSettings(ObjectiveSettings):
    weight: float = setting(0.4, "lambda of the rotation cross-entropy",
                            source="rdangovs/essl cifar10/README.md: --lmbd=0.4", ge=0)
    crop_size: int = setting(16, "side of the small rotated view (ImageNet: 96)",
                             source="ContrastiveLearningTransform.transforms_rotation: RandomResizedCrop(16)", ge=1)
    crop_min_scale: float = setting(0.2, "smallest crop scale of that view (ImageNet: 0.05)", source="scale=(0.2, 1.0)",
                                    gt=0, le=1)
    crop_max_scale: float = setting(1.0, "largest crop scale of that view (ImageNet: 0.14)", source="scale=(0.2, 1.0)",
                                    gt=0, le=1)
    hidden_dim: int = setting(2048, "hidden width of the rotation head", source="predictor2: 512 -> 2048 -> 2048 -> 4",
                              ge=1)
    head: str = setting("simclr", "simsiam: E-SimSiam's head without the second ReLU", source="predictor2",
                        choices=HEADS)

    def check(self, cfg: DictConfig) -> None:
        if self.crop_min_scale > self.crop_max_scale:
            raise ConfigError(f"objectives.rotation.crop_min_scale={self.crop_min_scale} is larger than "
                              f"objectives.rotation.crop_max_scale={self.crop_max_scale}; the scale range must be "
                              f"(min, max) with min <= max")


class Rotation(Objective):
    """Cross-entropy of the rotation (0, 90, 180, 270 degrees) predicted from h(rot_k(x_small))."""

    SETTINGS: ClassVar[type[ObjectiveSettings]] = RotationSettings
    encodes: ClassVar[tuple[str, ...]] = ("extras.rotation",)
    encodes_apart: ClassVar[bool] = True  # the official code encodes the 4N rotated views in a call of their own

    def __init__(self, settings: RotationSettings, context: ObjectiveContext) -> None:
        super().__init__(settings, context)
        self.head = rotation_head(context.features_dim, settings.hidden_dim, settings.head)

    @classmethod
    def extras(cls, settings: RotationSettings, cfg: DictConfig) -> dict[str, Callable[[torch.Tensor], Any]]:
        """"rotation": the four rotations of one view through the first view's policy at the small size."""
        info = DATASET_INFO[cfg.data.dataset]
        policy = policy_variant(policies_from_config(cfg.augmentations)[0], settings.crop_size, settings.crop_min_scale,
                                settings.crop_max_scale)
        return {"rotation": functools.partial(rotated_views, policy=policy, mean=info.mean, std=info.std)}

    def forward(self, batch: Batch, feats: Features) -> dict[str, torch.Tensor]:
        logits, labels = rotation_logits_and_labels(self.head, feats["extras.rotation"])
        return {"loss": F.cross_entropy(logits, labels),
                "acc": (logits.argmax(dim=1) == labels).float().mean().detach()}
