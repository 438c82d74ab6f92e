"""The checks a pretraining config allows before any dataset is read or file written, in one pass:
every declared setting's rule and every component's own `check` (the schema's groups, the method's
`method_kwargs`, each objective, each augmentation entry). Each error is a ConfigError naming the
key, the value and what is valid. The checks that need the loaders, the objectives' requests or the
dataset index (a batch larger than the data, image headers, a 3DIEBench tree) are in
`solo_equimod.data.checks`."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from solo_equimod.config.components import COMPONENTS
from solo_equimod.config.schema import PretrainConfig
from solo_equimod.config.settings import check_settings, parse_settings


def check_pretrain_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value of a validated pretraining config that cannot work;
    reads no data and writes nothing. The components' own checks come from `COMPONENTS.checks`."""
    components = COMPONENTS.require()
    check_settings(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(PretrainConfig), cfg)), "", cfg)
    components.checks["backbone"](cfg)
    components.checks["augmentations"](cfg)
    parse_settings(components.methods[cfg.method].SETTINGS, cfg.method_kwargs, "method_kwargs", cfg)
    components.checks["objectives"](cfg)
