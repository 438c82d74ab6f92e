"""BYOL (Grill et al., 2020): online network + predictor regress a momentum target network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules.heads import BYOLPredictionHead, BYOLProjectionHead
from omegaconf import DictConfig
from torch import nn

from solo_equimod.config.settings import setting
from solo_equimod.data.batch import Batch
from solo_equimod.head_batching import apply_heads
from solo_equimod.methods.base import MethodSettings
from solo_equimod.methods.momentum import MomentumProjectedMethod, MomentumSettings


@dataclass
class BYOLSettings(MomentumSettings):
    proj_hidden_dim: int = setting(4096, "hidden width of the projector", source="BYOL", ge=1)
    proj_output_dim: int = setting(256, "width of the invariant latent space", source="EquiMod Sec. 3.1.2", ge=1)
    pred_hidden_dim: int = setting(4096, "hidden width of the predictor", source="BYOL", ge=1)


class BYOL(MomentumProjectedMethod):
    SETTINGS: ClassVar[type[MethodSettings]] = BYOLSettings

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k = self.kwargs
        self.projector = self.conditioned(BYOLProjectionHead(self.head_input_dim, k.proj_hidden_dim, k.proj_output_dim))
        self.predictor = BYOLPredictionHead(k.proj_output_dim, k.pred_hidden_dim, k.proj_output_dim)
        self.momentum_projector = self._frozen_copy(self.projector)
        self.criterion = NegativeCosineSimilarity()

    @property
    def learnable_params(self) -> list[nn.Module]:
        return super().learnable_params + [self.predictor]

    def method_loss(self, view_feats: list[torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        mode = self.kwargs.head_batches  # "joint": both views in one call per head, as the official code
        p1, p2 = apply_heads(self.predictor, mode, apply_heads(self.projector, mode, self.head_inputs(view_feats, batch)))
        with torch.no_grad():
            targets = self.head_inputs(self.encode_momentum(batch["views"]), batch)
            t1, t2 = apply_heads(self.momentum_projector, mode, targets)
        # symmetrised regression loss, 2 - 2cos per direction as in the paper
        loss = 2 * (self.criterion(p1, t2) + self.criterion(p2, t1)) + 4
        return {"loss": loss}

    def encode_momentum(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(self.momentum_backbone(torch.cat(views)).chunk(len(views)))
