"""The model an evaluation command reads: a solo-equimod checkpoint (`run.checkpoints.load_method`)
or a backbone from elsewhere (`eval.any_backbone`), and the evaluation's config validated with the
checkpoint's pretraining data as its defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from solo_equimod.config.schema import validate
from solo_equimod.errors import ConfigError
from solo_equimod.eval.any_backbone import KEYS as FOREIGN_KEYS
from solo_equimod.eval.any_backbone import ForeignBackbone, is_architecture, load_foreign
from solo_equimod.methods import BaseMethod
from solo_equimod.run.checkpoints import is_own_checkpoint, load_method


def load_for_eval(raw_cfg: DictConfig | dict, schema: type) -> tuple[DictConfig, BaseMethod | ForeignBackbone]:
    """Load the model named by `pretrained_feature_extractor` and validate an evaluation config
    against `schema`; `data.*` keys not given default to the checkpoint's pretraining data. A
    backbone from elsewhere (`timm:NAME`, `torchvision:NAME`, or a weights file with `backbone=`;
    `eval/any_backbone.py`) takes `weights`, `backbone` and `augmentations` from the config."""
    path = raw_cfg.get("pretrained_feature_extractor")
    if not path or path == "???":
        raise ConfigError("missing required config key: pretrained_feature_extractor (a pretraining checkpoint)")
    given = OmegaConf.to_container(raw_cfg) if isinstance(raw_cfg, DictConfig) else dict(raw_cfg)
    foreign = {key: given.pop(key) for key in FOREIGN_KEYS if key in given}
    if not is_architecture(path) and not Path(path).is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    if is_architecture(path) or foreign.get("backbone") or not is_own_checkpoint(path):
        method: BaseMethod | ForeignBackbone = load_foreign({**foreign, "pretrained_feature_extractor": path})
    elif foreign:
        raise ConfigError(f"{', '.join(sorted(foreign))} describe a backbone from elsewhere; {path} is a solo-equimod "
                          f"checkpoint, which carries its own architecture and augmentations")
    else:
        method = load_method(path)
    base = OmegaConf.create({"data": OmegaConf.to_container(method.cfg.data, resolve=True)})
    if isinstance(given.get("data"), dict):  # under Hydra the schema writes every key; its nulls are "not given"
        given["data"] = _without_nulls(given["data"])
    cfg = validate(OmegaConf.merge(base, OmegaConf.create(given)), schema)
    if isinstance(method, ForeignBackbone):  # it was trained on unknown data: the evaluation's stands in
        method.cfg.data = OmegaConf.to_container(cfg.data, resolve=True)
    return cfg, method


def _without_nulls(node: Any) -> Any:
    """A config container with its null values (and mappings left empty by that) removed."""
    if not isinstance(node, dict):
        return node
    kept = {key: _without_nulls(value) for key, value in node.items() if value is not None}
    return {key: value for key, value in kept.items() if value != {}}


