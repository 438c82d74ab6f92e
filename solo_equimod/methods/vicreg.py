"""VICReg (Bardes et al., 2022); not in the EquiMod paper, so solo-learn's CIFAR setting."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from lightly.loss import VICRegLoss
from lightly.models.modules.heads import VICRegProjectionHead
from omegaconf import DictConfig
from torch import nn

from solo_equimod.methods.base import BaseMethod


class VICReg(BaseMethod):
    KWARGS_DEFAULTS: ClassVar[dict[str, Any]] = {
        **BaseMethod.KWARGS_DEFAULTS,
        "proj_hidden_dim": 2048,
        "proj_output_dim": 2048,
        "sim_loss_weight": 25.0,
        "var_loss_weight": 25.0,
        "cov_loss_weight": 1.0,
    }

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k = self.kwargs
        self.projector = VICRegProjectionHead(self.features_dim, k["proj_hidden_dim"], k["proj_output_dim"])
        self.criterion = VICRegLoss(lambda_param=k["sim_loss_weight"], mu_param=k["var_loss_weight"],
                                    nu_param=k["cov_loss_weight"], gather_distributed=self.gather_distributed)

    @property
    def learnable_params(self) -> list[nn.Module]:
        return super().learnable_params + [self.projector]

    def invariance_step(self, view_feats: list[torch.Tensor], views: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        z1, z2 = (self.projector(h) for h in view_feats)
        return {"loss": self.criterion(z1, z2)}
