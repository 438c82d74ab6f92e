"""The checks a pretraining config allows before any dataset is read or file written, in one pass:
every declared setting's rule and every component's own `check` (the schema's groups, the method's
`method_kwargs`, each objective, each augmentation entry). Each error is a ConfigError naming the
key, the value and what is valid. The checks that need the dataset index (a batch larger than the
data, image headers, a 3DIEBench tree) are in `solo_equimod.data.checks`."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from solo_equimod.augment import policies_from_config
from solo_equimod.config import PretrainConfig
from solo_equimod.methods import METHODS
from solo_equimod.objectives.compose import objective_settings
from solo_equimod.settings import check_settings, parse_settings


def check_pretrain_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value of a validated pretraining config that cannot work;
    reads no data and writes nothing."""
    check_settings(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(PretrainConfig), cfg)), "", cfg)
    policies_from_config(cfg.augmentations)
    parse_settings(METHODS[cfg.method].SETTINGS, cfg.method_kwargs, "method_kwargs", cfg)
    for name, given in (cfg.get("objectives") or {}).items():
        objective_settings(name, given, cfg)
