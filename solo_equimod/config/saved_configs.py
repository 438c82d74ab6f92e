"""Saved configs keep their meaning when a default changes: a config written before
`CONFIG_VERSION` k cannot hold the keys that k introduced, so those keys get the values the
old code used (each component's `PINNED_BEFORE`) instead of today's defaults. Applied to configs
read from checkpoints, never to a user's new config."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf, open_dict

from solo_equimod.config.components import COMPONENTS
from solo_equimod.config.defaults_version import CONFIG_VERSION
from solo_equimod.config.schema import complete_method_kwargs


def pin_saved_config(cfg: DictConfig | dict) -> DictConfig:
    """The canonical form of a saved config, completed with today's declared defaults (as a new
    config is), with the keys it predates pinned to their old values."""
    components = COMPONENTS.require()
    cfg = components.canonical(cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg))  # type: ignore[misc]
    if cfg.method in components.methods:
        cfg = complete_method_kwargs(cfg)
    version = int(cfg.get("config_version") or 1)
    with open_dict(cfg):
        for introduced in range(version + 1, CONFIG_VERSION + 1):
            method = components.methods.get(cfg.method)
            cfg.method_kwargs.update(getattr(method, "PINNED_BEFORE", {}).get(introduced, {}))
            if cfg.backbone.get("kwargs") is None:
                cfg.backbone.kwargs = {}
            cfg.backbone.kwargs.update(components.backbone_pinned_before.get(introduced, {}).get(cfg.backbone.name, {}))
            for name, settings in cfg.objectives.items():
                settings.update(components.objectives[name].PINNED_BEFORE.get(introduced, {}))
        cfg.config_version = CONFIG_VERSION
    return cfg
