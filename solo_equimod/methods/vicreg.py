"""VICReg (Bardes et al., 2022); not in the EquiMod paper, so solo-learn's CIFAR setting."""

from __future__ import annotations

from typing import Any, ClassVar

from lightly.loss import VICRegLoss
from lightly.models.modules.heads import VICRegProjectionHead
from omegaconf import DictConfig

from solo_equimod.methods.projected import ProjectedPairMethod


class VICReg(ProjectedPairMethod):
    KWARGS_DEFAULTS: ClassVar[dict[str, Any]] = {
        **ProjectedPairMethod.KWARGS_DEFAULTS,
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
