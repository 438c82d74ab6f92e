"""The methods registry: `METHODS[name](cfg)` builds a LightningModule from an omegaconf config.

The old names `<base>_equimod` stay valid: they build `<base>` with `objectives.equimod` added.
"""

from solo_equimod.config.components import COMPONENTS
from solo_equimod.methods.barlow_twins import BarlowTwins
from solo_equimod.methods.base import BaseMethod
from solo_equimod.methods.byol import BYOL
from solo_equimod.methods.equicaps import EquiCaps
from solo_equimod.methods.essl import ESSL
from solo_equimod.methods.mocov2 import MoCoV2
from solo_equimod.methods.momentum import BaseMomentumMethod
from solo_equimod.methods.sie import SIE
from solo_equimod.methods.simclr import SimCLR
from solo_equimod.methods.vicreg import VICReg
from solo_equimod.objectives import METHOD_ALIASES

BASE_METHODS: dict[str, type[BaseMethod]] = {
    "simclr": SimCLR,
    "byol": BYOL,
    "barlow_twins": BarlowTwins,
    "vicreg": VICReg,
    "mocov2": MoCoV2,
    "essl": ESSL,
    "sie": SIE,
    "equicaps": EquiCaps,
}

METHODS: dict[str, type[BaseMethod]] = {
    **BASE_METHODS,
    **{alias: BASE_METHODS[base] for alias, (base, _) in METHOD_ALIASES.items()},
}

COMPONENTS.methods.update(METHODS)  # the configuration checks, completes and pins their settings

__all__ = ["BASE_METHODS", "METHODS", "BaseMethod", "BaseMomentumMethod"]
