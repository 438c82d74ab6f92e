"""Configuration schema (solo-learn's keys) and its validation.

The schema is a structured omegaconf config: merging a user's YAML into it rejects unknown keys
and wrong types with an error that names the key, so we only add the checks it cannot do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from solo_equimod.config_version import CONFIG_VERSION
from solo_equimod.errors import ConfigError
from solo_equimod.methods import METHODS
from solo_equimod.objectives.compose import canonical_config

__all__ = ["ConfigError", "DataConfig", "PretrainConfig", "validate"]


def run_name(*, _root_: DictConfig) -> str:
    """`${run_name:}`: `<method>[_<objective>...]-<dataset>`, e.g. `simclr_equimod-cifar10`."""
    method = _root_.method
    objectives = [name for name in (_root_.get("objectives") or {}) if not method.endswith(f"_{name}")]
    return "_".join([method, *objectives]) + f"-{_root_.data.dataset}"


OmegaConf.register_new_resolver("run_name", run_name, replace=True)


@dataclass
class BackboneConfig:
    name: str = "resnet18"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class OriginalConfig:
    """The un-augmented image EquiMod encodes: as is (null, null) or Resize + CenterCrop."""

    resize: Optional[int] = None
    center_crop: Optional[int] = None


@dataclass
class DataConfig:
    dataset: str = MISSING
    train_path: Optional[str] = None
    val_path: Optional[str] = None
    format: str = "image_folder"  # image_folder | dali | tensor
    tensor_budget_gb: float = 8.0  # data.format=tensor: the most memory the decoded training set may take
    num_workers: int = 4
    download: bool = False
    num_classes: Optional[int] = None  # filled from the dataset when null
    synthetic_size: Optional[int] = None  # number of training images (factors3d: objects) of the procedural datasets
    group: str = "rot"  # 3diebench / factors3d: the group element of a view pair, rot | rotcolor | all (SIE)
    skip_corrupt: bool = False  # skip unreadable files with a warning (every loader) instead of failing
    original: OriginalConfig = field(default_factory=OriginalConfig)


@dataclass
class OptimizerConfig:
    name: str = "lars"
    batch_size: int = MISSING
    lr: float = MISSING
    classifier_lr: float = 0.1
    weight_decay: float = MISSING
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class SchedulerConfig:
    name: str = "warmup_cosine"
    warmup_epochs: float = 10


@dataclass
class CheckpointConfig:
    enabled: bool = True
    dir: str = "trained_models"
    frequency: int = 1  # epochs between checkpoints
    keep_epochs: int = 1  # epoch checkpoints kept, the newest (-1: all); last.ckpt is always kept
    every_n_steps: int = 0  # also save steps/epoch=E-step=S.ckpt every N optimiser steps (0: off)
    keep_steps: int = 1  # step checkpoints kept (the newest)


@dataclass
class AutoResumeConfig:
    enabled: bool = False  # continue from the newest readable, compatible checkpoint of checkpoint.dir/name


@dataclass
class WandbConfig:
    enabled: bool = False
    project: str = "solo-equimod"
    entity: Optional[str] = None
    offline: bool = False


@dataclass
class PretrainConfig:
    config_version: int = CONFIG_VERSION  # the defaults a saved config was written against
    name: str = MISSING
    method: str = MISSING
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    method_kwargs: dict[str, Any] = field(default_factory=dict)
    objectives: dict[str, Any] = field(default_factory=dict)  # objective name -> its settings ({weight: ..., ...})
    data: DataConfig = field(default_factory=DataConfig)
    augmentations: list[dict[str, Any]] = MISSING
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    auto_resume: AutoResumeConfig = field(default_factory=AutoResumeConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    max_epochs: int = MISSING
    max_steps: int = -1
    limit_train_batches: Any = None  # int: batches, float: fraction (Lightning semantics)
    limit_val_batches: Any = None
    devices: Any = 1
    num_nodes: int = 1
    accelerator: str = "auto"
    strategy: str = "auto"
    precision: str = "32-true"
    sync_batchnorm: bool = False
    seed: int = 5
    log_dir: str = "outputs"
    log_every_n_steps: int = 50


def _strip_hydra(cfg: DictConfig) -> DictConfig:
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)  # type: ignore[union-attr]
    return OmegaConf.create(container)


def _missing_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    keys = []
    for key in cfg.keys():
        full = f"{prefix}{key}"
        if OmegaConf.is_missing(cfg, key):
            keys.append(full)
        elif isinstance(cfg[key], DictConfig):
            keys += _missing_keys(cfg[key], f"{full}.")
    return keys


def validate(cfg: DictConfig, schema: type = PretrainConfig) -> DictConfig:
    """User config -> typed config; raises ConfigError naming the key for unknown keys, wrong
    types, missing required keys, an unknown method or objective. A pretraining config comes back
    canonical (`objectives.compose.canonical_config`), with its run name resolved first."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), _strip_hydra(cfg))
    except OmegaConfBaseException as err:
        raise ConfigError(f"invalid config: {err.msg} (key: {err.full_key})") from err
    missing = _missing_keys(merged)
    if missing:
        raise ConfigError(f"missing required config key(s): {', '.join(missing)}")
    if "method" not in merged:
        return merged
    if merged.method not in METHODS:
        raise ConfigError(f"method={merged.method!r} is unknown; valid: {', '.join(sorted(METHODS))}")
    merged.name = str(merged.name)  # `${method}` in a name means the method as written, alias included
    return canonical_config(merged)
