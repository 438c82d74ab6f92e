"""SimCLR (Chen et al., 2020) with the 3-layer projection head EquiMod uses (Sec. 2.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from lightly.loss import NTXentLoss
from lightly.models.modules.heads import SimCLRProjectionHead
from omegaconf import DictConfig
from torch import nn

from solo_equimod.config.settings import setting
from solo_equimod.methods.base import MethodSettings
from solo_equimod.methods.projected import ProjectedPairMethod


@dataclass
class SimCLRSettings(MethodSettings):
    proj_hidden_dim: int = setting(2048, "hidden width of the projector", source="EquiMod Sec. 2.3", ge=1)
    proj_output_dim: int = setting(128, "width of the invariant latent space", source="EquiMod Sec. 3.1.1", ge=1)
    proj_num_layers: int = setting(3, "layers of the projector", source="EquiMod Sec. 2.3 (Chen & He 2021)", ge=2)
    temperature: float = setting(0.5, "tau of NT-Xent (0.2 on ImageNet)", source="EquiMod Sec. 3.1.1", gt=0)
    last_bn_affine: bool = setting(False, "the projector's last BN has affine parameters",
                                   source="official EquiMod src/model.py (no affine)")
    proj_bn: str = setting("all", "all: BN after every layer (EquiMod); hidden: not after the last, whose Linear has a bias "
                           "(proj_last_bias; CARE's CIFAR g); none: no BN (MoCo-v2's head, CARE's ImageNet-100)",
                           source="Sharut/CARE model.py", choices=("all", "hidden", "none"))
    proj_last_bias: bool = setting(True, "proj_bn=hidden: the last Linear has a bias (CARE's CIFAR g); false: none "
                                   "(STL's load_mlp)", source="Sharut/CARE model.py; jaemyung-u/stl model.py")


class SimCLR(ProjectedPairMethod):
    SETTINGS: ClassVar[type[MethodSettings]] = SimCLRSettings
    PINNED_BEFORE: ClassVar[dict[int, dict[str, Any]]] = {
        2: {**ProjectedPairMethod.PINNED_BEFORE[2], "last_bn_affine": True},
    }

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k = self.kwargs
        head = SimCLRProjectionHead(self.head_input_dim, k.proj_hidden_dim, k.proj_output_dim,
                                    num_layers=k.proj_num_layers, batch_norm=k.proj_bn != "none")
        if k.proj_bn == "hidden":  # the last Linear (no bias, before a BN) becomes one without BN, with a bias or not
            del head.layers[-1]
            head.layers[-1] = nn.Linear(k.proj_hidden_dim, k.proj_output_dim, bias=k.proj_last_bias)
        elif k.proj_bn == "all" and not k.last_bn_affine:
            head.layers[-1] = nn.BatchNorm1d(k.proj_output_dim, affine=False)
        self.projector = self.conditioned(head)
        self.criterion = NTXentLoss(temperature=k.temperature, gather_distributed=self.gather_distributed)
