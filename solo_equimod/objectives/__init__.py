"""Objectives: losses that compose onto any method, configured as `objectives: {name: {weight: ...}}`.

`OBJECTIVES[name]` is the objective's class; `compose.py` turns a config into its settings and modules.
"""

from solo_equimod.objectives.augself import AugSelf
from solo_equimod.objectives.base import (
    Features,
    HeadConditioner,
    Objective,
    ObjectiveContext,
    PredictsViews,
    PredictsViewsFromExample,
)
from solo_equimod.objectives.care import CARE
from solo_equimod.objectives.cassle import CASSLE
from solo_equimod.objectives.equimod import EquiMod
from solo_equimod.objectives.equimod_views import EquiModViews
from solo_equimod.objectives.rotation import Rotation
from solo_equimod.objectives.stl import STL
from solo_equimod.objectives.transform_prediction import TransformPrediction

OBJECTIVES: dict[str, type[Objective]] = {
    "equimod": EquiMod,
    "equimod_views": EquiModViews,  # view 2 predicted from view 1, for data whose params take view 1 to view 2
    "rotation": Rotation,
    "transform_prediction": TransformPrediction,
    "augself": AugSelf,
    "care": CARE,
    "cassle": CASSLE,  # a HeadConditioner: it conditions the method's projector instead of adding a loss
    "stl": STL,
}

# method names from before objectives existed: `<base>_equimod` is `<base>` + objectives.equimod
METHOD_ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    f"{base}_equimod": (base, ("equimod",)) for base in ("simclr", "byol", "barlow_twins", "vicreg")
}

__all__ = ["CARE", "CASSLE", "METHOD_ALIASES", "OBJECTIVES", "STL", "AugSelf", "EquiMod", "EquiModViews", "Features",
           "HeadConditioner", "Objective", "ObjectiveContext", "PredictsViews", "PredictsViewsFromExample", "Rotation",
           "TransformPrediction"]
