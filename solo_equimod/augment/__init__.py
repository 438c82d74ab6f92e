"""Augmentation that returns its parameters (EquiMod paper, Appendix A.1)."""

from solo_equimod.augment.params import AugmentationLayout, ViewParams
from solo_equimod.augment.pipeline import OriginalView, ParamPretrainTransform
from solo_equimod.augment.policy import ViewPolicy, layout_for, policies_from_config

__all__ = [
    "OriginalView",
    "AugmentationLayout",
    "ParamPretrainTransform",
    "ViewParams",
    "ViewPolicy",
    "layout_for",
    "policies_from_config",
]
