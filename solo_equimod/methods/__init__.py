"""The methods registry: `METHODS[name](cfg)` builds a LightningModule from an omegaconf config."""

from solo_equimod.methods.barlow_twins import BarlowTwins
from solo_equimod.methods.base import BaseMethod, BaseMomentumMethod
from solo_equimod.methods.byol import BYOL
from solo_equimod.methods.equimod import EquiModule, with_equimod
from solo_equimod.methods.simclr import SimCLR
from solo_equimod.methods.vicreg import VICReg

_BASELINES: dict[str, type[BaseMethod]] = {
    "simclr": SimCLR,
    "byol": BYOL,
    "barlow_twins": BarlowTwins,
    "vicreg": VICReg,
}

METHODS: dict[str, type[BaseMethod]] = {
    **_BASELINES,
    **{f"{name}_equimod": with_equimod(cls) for name, cls in _BASELINES.items()},
}

__all__ = ["METHODS", "BaseMethod", "BaseMomentumMethod", "EquiModule", "with_equimod"]
