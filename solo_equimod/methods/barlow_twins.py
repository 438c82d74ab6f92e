"""Barlow Twins (Zbontar et al., 2021) with EquiMod's CIFAR10 setting (Sec. 3.1.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from lightly.loss import BarlowTwinsLoss
from lightly.models.modules.heads import BarlowTwinsProjectionHead
from omegaconf import DictConfig

from solo_equimod.config.settings import setting
from solo_equimod.methods.base import MethodSettings
from solo_equimod.methods.projected import ProjectedPairMethod


@dataclass
class BarlowTwinsSettings(MethodSettings):
    proj_hidden_dim: int = setting(2048, "hidden width of the projector", source="EquiMod Sec. 3.1.3", ge=1)
    proj_output_dim: int = setting(128, "width of the invariant latent space", source="EquiMod Sec. 3.1.3", ge=1)
    lamb: float = setting(0.005, "weight of the redundancy-reduction (off-diagonal) term",
                          source="EquiMod Sec. 3.1.3: lambda_BarlowTwins = 0.005", ge=0)


class BarlowTwins(ProjectedPairMethod):
    SETTINGS: ClassVar[type[MethodSettings]] = BarlowTwinsSettings

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k = self.kwargs
        self.projector = self.conditioned(BarlowTwinsProjectionHead(self.head_input_dim, k.proj_hidden_dim,
                                                                   k.proj_output_dim))
        self.criterion = BarlowTwinsLoss(lambda_param=k.lamb, gather_distributed=self.gather_distributed)
