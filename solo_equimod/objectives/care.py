"""CARE (Gupta, Robinson et al., NeurIPS 2023; Sharut/CARE) as an objective: augmentations should act
on the embedding sphere as rotations. The batch's un-augmented images are split into `chunks`;
every image of a chunk gets the same pair (t1, t2), drawn by the batch-level sampler with the
chunk ids as groups and applied on the training device to the uint8 originals (the method's batch
stage normalises the two views); the loss (`losses/care.py`) compares the
chunks' Gram matrices of the L2-normalised embeddings, L = L_method + weight * L_CARE.

`pairs: per_chunk` is the paper (one pair per chunk); `per_step` the official code, whose
`vmap(randomness="same")` draws one pair for the whole step. The embeddings are the method's own
head (`head: method`, the official code: the same `g` / `encoder_q` as the InfoNCE) or a head of
CARE's own (`own`: CARE's CIFAR `g`). Each of the two views is a backbone and head batch of its own,
as the official code's separate forward passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import torch
import torch.nn.functional as F
from lightly.models.modules.heads import ProjectionHead
from omegaconf import DictConfig, OmegaConf
from torch import nn

from solo_equimod.augment.batched_applier import apply_batch
from solo_equimod.augment.policy import ViewPolicy, policy_from_config
from solo_equimod.augment.sampler import sample_views
from solo_equimod.config.settings import setting
from solo_equimod.data.batch import Batch
from solo_equimod.errors import ConfigError
from solo_equimod.losses.care import care_loss
from solo_equimod.objectives.base import Features, Objective, ObjectiveContext, ObjectiveSettings

VIEWS = ("extras.care.view1", "extras.care.view2")


@dataclass
class CARESettings(ObjectiveSettings):
    weight: float = setting(0.03, "weight of the CARE loss", source="scripts/cifar10.sh --weight 0.03", ge=0)
    chunks: int = setting(16, "chunks per process; the rows of a chunk share one pair of augmentations",
                          source="cifar10.sh --equiv-splits 16; ImageNet-100 --equiv-splits-per-gpu 4", ge=1)
    pairs: str = setting("per_chunk", "per_chunk: one pair per chunk (the paper); per_step: one pair per step "
                         "(the official vmap(randomness='same'))", source="paper Sec. 3; official main.py",
                         choices=("per_chunk", "per_step"))
    head: str = setting("method", "method: the method's own head (the official code); own: CARE's CIFAR g",
                        source="official model.py", choices=("method", "own"))
    proj_hidden_dim: int = setting(512, "head=own: hidden width of g", source="official model.py g", ge=1)
    proj_output_dim: int = setting(128, "head=own: output width of g", source="official model.py g", ge=1)
    images_per_process: Optional[int] = setting(None, "only the first rows of each batch (null: all)",
                                                source="official ImageNet-100: 128 images globally", ge=1)
    augmentation: Optional[dict[str, Any]] = setting(None, "an augmentations entry for the chunked views (null: "
                                                     "augmentations[0])")

    def check(self, cfg: DictConfig) -> None:
        """Every chunk needs >= 2 of the per-process batch's rows (the Gram matrices compare pairs)."""
        rows = cfg.optimizer.batch_size if self.images_per_process is None else \
            min(self.images_per_process, cfg.optimizer.batch_size)
        if rows // self.chunks < 2:
            raise ConfigError(f"objectives.care.chunks={self.chunks} splits the {rows} images of a process's batch "
                              f"(optimizer.batch_size={cfg.optimizer.batch_size}"
                              + ("" if self.images_per_process is None else
                                 f", objectives.care.images_per_process={self.images_per_process}")
                              + f") into chunks of {rows // self.chunks}; each chunk needs >= 2 images: use "
                              f"objectives.care.chunks <= {max(1, rows // 2)}")
        if self.augmentation is not None:
            policy_from_config(self.augmentation, "objectives.care.augmentation")


class CARE(Objective):
    SETTINGS: ClassVar[type[ObjectiveSettings]] = CARESettings
    inputs: ClassVar[tuple[str, ...]] = ("original",)
    makes: ClassVar[tuple[str, ...]] = VIEWS
    encodes: ClassVar[tuple[str, ...]] = VIEWS
    encodes_apart: ClassVar[bool] = True

    def __init__(self, settings: CARESettings, context: ObjectiveContext) -> None:
        super().__init__(settings, context)
        s, cfg = self.settings, context.cfg
        entry = s.augmentation if s.augmentation is not None else OmegaConf.to_container(cfg.augmentations[0])
        self.policy: ViewPolicy = policy_from_config(entry, "objectives.care.augmentation")[0]
        if s.head == "method" and context.embed is None:
            raise ConfigError(f"objectives.care.head='method': method {cfg.method!r} has no embedding head of the "
                              "backbone features alone (none, or one conditioned on the views' parameters); use "
                              "objectives.care.head=own (CARE's own g)")
        self.method_embed = context.embed
        hidden, out = s.proj_hidden_dim, s.proj_output_dim
        self.head = None if s.head == "method" else ProjectionHead([
            (context.features_dim, hidden, nn.BatchNorm1d(hidden), nn.ReLU()), (hidden, out, None, None)])

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        """z = head(h) L2-normalised (the official model normalises; the loss does not)."""
        return F.normalize(self.method_embed(h) if self.head is None else self.head(h), dim=1)

    def derive(self, batch: Batch) -> Batch:
        """{"extras": {"care": {"view1", "view2": uint8 views of the kept rows, "params": their two
        `BatchViewParams`, "groups": each row's draw}}}: chunks of N // chunks rows, the rest dropped."""
        original = batch["original"]
        s = self.settings
        rows = original.shape[0] if s.images_per_process is None else min(s.images_per_process, original.shape[0])
        size = rows // s.chunks  # >= 2: CARESettings.check
        kept = original[: size * s.chunks]
        groups = torch.arange(kept.shape[0]) // size
        if s.pairs == "per_step":
            groups = torch.zeros_like(groups)
        heights, widths = (torch.full_like(groups, side) for side in kept.shape[-2:])
        params = [sample_views(self.policy, heights, widths, groups=groups) for _ in range(2)]
        views = [apply_batch(kept, p, self.policy) for p in params]
        return {"extras": {"care": {"view1": views[0], "view2": views[1], "params": params, "groups": groups}}}

    def forward(self, batch: Batch, feats: Features) -> dict[str, torch.Tensor]:
        z1, z2 = (self.embed(feats[key]) for key in VIEWS)
        return {"loss": care_loss(z1, z2, self.settings.chunks)}
