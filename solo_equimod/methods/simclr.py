"""SimCLR (Chen et al., 2020) with the 3-layer projection head EquiMod uses (Sec. 2.3)."""

from __future__ import annotations

from typing import Any, ClassVar

from lightly.loss import NTXentLoss
from lightly.models.modules.heads import SimCLRProjectionHead
from omegaconf import DictConfig
from torch import nn

from solo_equimod.methods.projected import ProjectedPairMethod


class SimCLR(ProjectedPairMethod):
    KWARGS_DEFAULTS: ClassVar[dict[str, Any]] = {
        **ProjectedPairMethod.KWARGS_DEFAULTS,
        "proj_hidden_dim": 2048,
        "proj_output_dim": 128,  # Sec. 3.1.1: invariant latent space of 128 dimensions
        "proj_num_layers": 3,  # Sec. 2.3: 3-layer head as in Chen & He (2021)
        "temperature": 0.5,  # Sec. 3.1.1: tau = 0.5 on CIFAR10, 0.2 on ImageNet
        "last_bn_affine": False,  # the projector's last BN has no affine parameters (official src/model.py)
        # BN after every layer (EquiMod); "hidden": not after the last, whose Linear has a bias (CARE's CIFAR
        # head, Sharut/CARE model.py `g`); "none": no BN, biases everywhere (MoCo-v2's head, CARE's ImageNet-100)
        "proj_bn": "all",
    }
    PROJ_BN: ClassVar[tuple[str, ...]] = ("all", "hidden", "none")
    PINNED_BEFORE: ClassVar[dict[int, dict[str, Any]]] = {
        2: {**ProjectedPairMethod.PINNED_BEFORE[2], "last_bn_affine": True},
    }

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k = self.kwargs
        if k["proj_bn"] not in self.PROJ_BN:
            raise ValueError(f"method_kwargs.proj_bn={k['proj_bn']!r} is unknown; valid: {list(self.PROJ_BN)}")
        self.projector = SimCLRProjectionHead(self.features_dim, k["proj_hidden_dim"], k["proj_output_dim"],
                                              num_layers=k["proj_num_layers"], batch_norm=k["proj_bn"] != "none")
        if k["proj_bn"] == "hidden":  # the last Linear (no bias, before a BN) becomes one with a bias, no BN
            del self.projector.layers[-1]
            self.projector.layers[-1] = nn.Linear(k["proj_hidden_dim"], k["proj_output_dim"])
        elif k["proj_bn"] == "all" and not k["last_bn_affine"]:
            self.projector.layers[-1] = nn.BatchNorm1d(k["proj_output_dim"], affine=False)
        self.criterion = NTXentLoss(temperature=k["temperature"], gather_distributed=self.gather_distributed)
