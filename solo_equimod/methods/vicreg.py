"""VICReg (Bardes et al., 2022); not in the EquiMod paper, so solo-learn's CIFAR setting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from lightly.loss import VICRegLoss
from lightly.models.modules.heads import VICRegProjectionHead
from omegaconf import DictConfig

from solo_equimod.config.settings import setting
from solo_equimod.methods.base import MethodSettings
from solo_equimod.methods.projected import ProjectedPairMethod


@dataclass
class VICRegSettings(MethodSettings):
    proj_hidden_dim: int = setting(2048, "hidden width of the projector", source="solo-learn cifar/vicreg.yaml", ge=1)
    proj_output_dim: int = setting(2048, "width of the embedding", source="solo-learn cifar/vicreg.yaml", ge=1)
    sim_loss_weight: float = setting(25.0, "weight of the invariance term", source="VICReg (lambda = 25)", ge=0)
    var_loss_weight: float = setting(25.0, "weight of the variance term", source="VICReg (mu = 25)", ge=0)
    cov_loss_weight: float = setting(1.0, "weight of the covariance term", source="VICReg (nu = 1)", ge=0)


class VICReg(ProjectedPairMethod):
    SETTINGS: ClassVar[type[MethodSettings]] = VICRegSettings

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k = self.kwargs
        self.projector = self.conditioned(VICRegProjectionHead(self.head_input_dim, k.proj_hidden_dim, k.proj_output_dim))
        self.criterion = VICRegLoss(lambda_param=k.sim_loss_weight, mu_param=k.var_loss_weight,
                                    nu_param=k.cov_loss_weight, gather_distributed=self.gather_distributed)
