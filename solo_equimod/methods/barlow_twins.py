"""Barlow Twins (Zbontar et al., 2021) with EquiMod's CIFAR10 setting (Sec. 3.1.3)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from lightly.loss import BarlowTwinsLoss
from lightly.models.modules.heads import BarlowTwinsProjectionHead
from omegaconf import DictConfig
from torch import nn

from solo_equimod.methods.base import BaseMethod


class BarlowTwins(BaseMethod):
    KWARGS_DEFAULTS: ClassVar[dict[str, Any]] = {
        **BaseMethod.KWARGS_DEFAULTS,
        "proj_hidden_dim": 2048,
        "proj_output_dim": 128,  # Sec. 3.1.3: invariant latent space of 128 dimensions
        "lamb": 0.005,  # Sec. 3.1.3: lambda_BarlowTwins = 0.005
    }

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k = self.kwargs
        self.projector = BarlowTwinsProjectionHead(self.features_dim, k["proj_hidden_dim"], k["proj_output_dim"])
        self.criterion = BarlowTwinsLoss(lambda_param=k["lamb"], gather_distributed=self.gather_distributed)

    @property
    def learnable_params(self) -> list[nn.Module]:
        return super().learnable_params + [self.projector]

    def invariance_step(self, view_feats: list[torch.Tensor], views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        z1, z2 = (self.projector(h) for h in view_feats)
        return {"loss": self.criterion(z1, z2)}
