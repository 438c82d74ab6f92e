"""What a batch's `params` are, readable from the config alone (so a checkpoint rebuilds its heads
before any data is read): the Appendix A.1 augmentation vectors, each taking the ORIGINAL image to
its view, or, for datasets of renderings (3DIEBench, factors3d), group elements relative to the
FIRST view (`params[0]` the identity, `params[1]` view 1 -> view 2; `data/views3d.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from solo_equimod.augment.policy import layout_for, policies_from_config
from solo_equimod.config.choices import VIEW_DATASETS
from solo_equimod.data.views3d import group_spec


@dataclass(frozen=True)
class BatchParamsSpec:
    """What the `params` vectors of a batch are: their component names and what they are relative to (the
    augmentation vectors of an `AugmentationLayout`, or a dataset of renderings' group elements)."""

    names: tuple[str, ...]  # one per component of a params vector
    relative_to: str  # "original": params[k] takes the original to views[k]; "first_view": views[0] to views[k]

    @property
    def dim(self) -> int:
        return len(self.names)


def param_spec(cfg: DictConfig) -> BatchParamsSpec:
    """The params of `cfg`'s data: its group elements (`data.group`) or its augmentations' layout."""
    if cfg.data.dataset in VIEW_DATASETS:
        return BatchParamsSpec(group_spec(cfg.data.get("group", "rot")).names, "first_view")
    return BatchParamsSpec(layout_for(policies_from_config(cfg.augmentations)).names, "original")
