"""Barlow Twins (Zbontar et al., 2021) with EquiMod's CIFAR10 setting (Sec. 3.1.3)."""

from __future__ import annotations

from typing import Any, ClassVar

from lightly.loss import BarlowTwinsLoss
from lightly.models.modules.heads import BarlowTwinsProjectionHead
from omegaconf import DictConfig

from solo_equimod.methods.projected import ProjectedPairMethod


class BarlowTwins(ProjectedPairMethod):
    KWARGS_DEFAULTS: ClassVar[dict[str, Any]] = {
        **ProjectedPairMethod.KWARGS_DEFAULTS,
        "proj_hidden_dim": 2048,
        "proj_output_dim": 128,  # Sec. 3.1.3: invariant latent space of 128 dimensions
        "lamb": 0.005,  # Sec. 3.1.3: lambda_BarlowTwins = 0.005
    }

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k = self.kwargs
        self.projector = BarlowTwinsProjectionHead(self.features_dim, k["proj_hidden_dim"], k["proj_output_dim"])
        self.criterion = BarlowTwinsLoss(lambda_param=k["lamb"], gather_distributed=self.gather_distributed)
