"""Configuration schema (solo-learn's keys) and its validation.

The schema is a structured omegaconf config: merging a user's YAML into it rejects unknown keys
and wrong types with an error that names the key, so we only add the checks it cannot do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from solo_equimod.augment.policy import ViewPolicy, policies_from_config
from solo_equimod.backbones import accepted_kwargs
from solo_equimod.config_version import CONFIG_VERSION
from solo_equimod.data.dataset_info import DATASETS, FOLDER_DATASETS, VIEW_DATASETS
from solo_equimod.data.pretrain import FORMAT_INPUTS, FORMATS
from solo_equimod.data.views3d import GROUPS
from solo_equimod.errors import ConfigError
from solo_equimod.methods import METHODS
from solo_equimod.objectives.compose import canonical_config, pipeline_requests
from solo_equimod.optim import OPTIMIZERS, SCHEDULERS
from solo_equimod.settings import Settings, parse_settings, setting, unknown_key_message

__all__ = ["ConfigError", "DataConfig", "PretrainConfig", "complete_method_kwargs", "validate"]


def run_name(*, _root_: DictConfig) -> str:
    """`${run_name:}`: `<method>[_<objective>...]-<dataset>`, e.g. `simclr_equimod-cifar10`."""
    method = _root_.method
    objectives = [name for name in (_root_.get("objectives") or {}) if not method.endswith(f"_{name}")]
    return "_".join([method, *objectives]) + f"-{_root_.data.dataset}"


OmegaConf.register_new_resolver("run_name", run_name, replace=True)


@dataclass
class BackboneConfig(Settings):
    name: str = setting("resnet18", "tiny_cnn, resnet18/34/50 (CIFAR stem below 64 px) or any timm model name",
                        source="EquiMod Sec. 3.1: ResNet-18")
    kwargs: dict[str, Any] = setting({}, "keyword arguments of the backbone's constructor")

    def check(self, cfg: DictConfig) -> None:
        accepted = accepted_kwargs(self.name)
        unknown = sorted(set(self.kwargs) - set(accepted or self.kwargs))
        if unknown:
            raise ConfigError(f"backbone.kwargs.{unknown[0]} is not a setting of backbone.name={self.name!r}; it "
                              f"accepts: {', '.join(accepted or ()) or 'none'} (remove it with '~backbone.kwargs."
                              f"{unknown[0]}')")


@dataclass
class OriginalConfig(Settings):
    """The un-augmented image EquiMod encodes: as is (null, null) or Resize + CenterCrop."""

    resize: Optional[int] = setting(None, "shorter side the original is resized to (null: as is)", ge=1)
    center_crop: Optional[int] = setting(None, "side of the original's centre crop (null: as is)", ge=1)


@dataclass
class DataConfig(Settings):
    dataset: str = setting(MISSING, "the dataset", choices=DATASETS)
    train_path: Optional[str] = setting(None, "training split: a folder (image folders, 3DIEBench root) or where "
                                        "torchvision datasets live")
    val_path: Optional[str] = setting(None, "validation split, as train_path")
    format: str = setting("image_folder", "image_folder: torchvision in DataLoader workers; dali: NVIDIA DALI; "
                          "tensor: the decoded set in memory, augmented in batches on the device", choices=FORMATS)
    tensor_budget_gb: float = setting(8.0, "data.format=tensor: the most memory the decoded training set may take",
                                      gt=0)
    num_workers: int = setting(4, "loader worker processes (0: load in the main process)", ge=0)
    download: bool = setting(False, "let torchvision download cifar10/cifar100/stl10 into train_path")
    num_classes: Optional[int] = setting(None, "number of classes (null: read from the dataset)", ge=1)
    synthetic_size: Optional[int] = setting(None, "training images (factors3d: objects) of the procedural datasets",
                                            ge=1)
    group: str = setting("rot", "3diebench / factors3d: the group element of a view pair", source="SIE",
                         choices=tuple(GROUPS))
    skip_corrupt: bool = setting(False, "skip unreadable files with a warning (every loader) instead of failing")
    original: OriginalConfig = setting(OriginalConfig(), "the un-augmented image")

    def check(self, cfg: DictConfig) -> None:
        if self.format == "dali" and self.dataset not in FOLDER_DATASETS:
            raise ConfigError(f"data.format='dali' reads an image folder: use it with data.dataset one of "
                              f"{', '.join(FOLDER_DATASETS)} (data.dataset={self.dataset!r} has no folder), or "
                              f"data.format=image_folder")
        if self.train_path is None and self.dataset in (*FOLDER_DATASETS, "3diebench"):
            what = "the dataset root (the folder holding train_images.npy and the synsets)" \
                if self.dataset == "3diebench" else "the training split folder (one sub-folder of images per class)"
            raise ConfigError(f"data.train_path=None is invalid: data.dataset={self.dataset!r} needs {what}")
        if self.dataset in VIEW_DATASETS:
            _check_renderings_unaugmented(self.dataset, policies_from_config(cfg.augmentations))
        if "objectives" in cfg:
            self._check_inputs(cfg)
        if self.format == "dali":
            from solo_equimod.data.dali.guard import require_dali  # the import guard: DALI is an optional extra

            try:
                require_dali()
            except ImportError as err:
                raise ConfigError(f"data.format='dali' needs NVIDIA DALI, which is not installed: {err}") from None

    def _check_inputs(self, cfg: DictConfig) -> None:
        """The objectives' inputs against what this format and dataset can make."""
        inputs, extras = pipeline_requests(cfg)
        asked = sorted(inputs) + (["extras"] if extras else [])
        makes = frozenset() if self.dataset in VIEW_DATASETS else FORMAT_INPUTS[self.format]
        missing = [name for name in asked if name not in makes]
        if missing:
            which = "the views (renderings) only" if self.dataset in VIEW_DATASETS else \
                ", ".join(["views", *sorted(makes)])
            source = f"data.dataset={self.dataset!r}" if self.dataset in VIEW_DATASETS else f"data.format={self.format!r}"
            extra_names = f" ({', '.join(sorted(extras))})" if "extras" in missing else ""
            raise ConfigError(f"objectives {', '.join(cfg.objectives)} need {', '.join(missing)}{extra_names}, which "
                              f"{source} cannot make (it makes {which})"
                              + ("" if self.dataset in VIEW_DATASETS else "; use data.format=image_folder"))


def _check_renderings_unaugmented(dataset: str, policies: list[ViewPolicy]) -> None:
    """The views of a dataset of renderings are the renderings (SIE: Resize + Normalize only)."""
    for i, p in enumerate(policies):
        applied = [key for key, on in (("rrc.enabled", p.rrc_enabled), ("horizontal_flip.prob", p.flip_prob > 0),
                                       ("color_jitter.prob", p.jitter_prob > 0), ("grayscale.prob", p.gray_prob > 0),
                                       ("gaussian_blur.prob", p.blur_prob > 0), ("solarization.prob", p.solarize_prob > 0))
                   if on]
        if applied:
            raise ConfigError(f"augmentations (view {i}) apply {applied}, but data.dataset={dataset!r} shows renderings "
                              f"as they are (SIE: Resize + Normalize only); turn these off, e.g. with "
                              f"scripts/pretrain/factors3d/augmentations/none.yaml")


@dataclass
class OptimizerConfig(Settings):
    name: str = setting("lars", "the optimiser", choices=OPTIMIZERS)
    batch_size: int = setting(MISSING, "images per process and step (the global batch is this x processes)", ge=1)
    lr: float = setting(MISSING, "base learning rate", gt=0)
    classifier_lr: float = setting(0.1, "learning rate of the online linear classifier", gt=0)
    weight_decay: float = setting(MISSING, "weight decay", ge=0)
    kwargs: dict[str, Any] = setting({}, "more keyword arguments of the optimiser (momentum, betas, ...)")


@dataclass
class SchedulerConfig(Settings):
    name: str = setting("warmup_cosine", "warmup_cosine: linear warm-up then cosine decay; none: constant",
                        choices=SCHEDULERS)
    warmup_epochs: float = setting(10, "epochs of linear warm-up", source="EquiMod Sec. 3.1", ge=0)


@dataclass
class CheckpointConfig(Settings):
    enabled: bool = setting(True, "write checkpoints")
    dir: str = setting("trained_models", "folder of the run folders (checkpoint.dir/name)")
    frequency: int = setting(1, "epochs between checkpoints", ge=1)
    keep_epochs: int = setting(1, "epoch checkpoints kept, the newest (-1: all); last.ckpt is always kept", ge=-1)
    every_n_steps: int = setting(0, "also save steps/epoch=E-step=S.ckpt every N optimiser steps (0: off)", ge=0)
    keep_steps: int = setting(1, "step checkpoints kept (the newest)", ge=1)

    def check(self, cfg: DictConfig) -> None:
        if self.keep_epochs == 0:
            raise ConfigError("checkpoint.keep_epochs=0 is invalid: use a positive count, or -1 to keep all")


@dataclass
class AutoResumeConfig(Settings):
    enabled: bool = setting(False, "continue from the newest readable, compatible checkpoint of checkpoint.dir/name")


@dataclass
class WandbConfig(Settings):
    enabled: bool = setting(False, "log to Weights & Biases too")
    project: str = setting("solo-equimod", "W&B project")
    entity: Optional[str] = setting(None, "W&B entity")
    offline: bool = setting(False, "log offline (sync later)")


def _check_limit(key: str, value: Any, allow_zero: bool) -> None:
    """Lightning's `limit_*_batches`: null, a count of batches, or a fraction of the epoch."""
    low = 0 if allow_zero else 1
    ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= low) or \
        (isinstance(value, float) and (0.0 <= value if allow_zero else 0.0 < value) and value <= 1.0)
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: use null (all), an integer >= {low} (batches) or a fraction "
                          f"in ({low if allow_zero else 0}, 1]")


@dataclass
class PretrainConfig(Settings):
    config_version: int = setting(CONFIG_VERSION, "the defaults a saved config was written against", ge=1)
    name: str = setting(MISSING, "the run's name: its folder inside checkpoint.dir")
    method: str = setting(MISSING, "the invariance method (or an alias such as simclr_equimod)")
    backbone: BackboneConfig = setting(BackboneConfig(), "the feature extractor")
    method_kwargs: dict[str, Any] = setting({}, "the method's settings (its declaration)")
    objectives: dict[str, Any] = setting({}, "objective name -> its settings ({weight: ..., ...})")
    data: DataConfig = setting(DataConfig(), "the data")
    augmentations: list[dict[str, Any]] = setting(MISSING, "one entry per pipeline; 2 views in all")
    optimizer: OptimizerConfig = setting(OptimizerConfig(), "the optimiser")
    scheduler: SchedulerConfig = setting(SchedulerConfig(), "the learning-rate schedule")
    checkpoint: CheckpointConfig = setting(CheckpointConfig(), "checkpoints")
    auto_resume: AutoResumeConfig = setting(AutoResumeConfig(), "continuing a run")
    wandb: WandbConfig = setting(WandbConfig(), "Weights & Biases")
    max_epochs: int = setting(MISSING, "epochs (-1 with a positive max_steps: steps decide)", ge=-1)
    max_steps: int = setting(-1, "optimiser steps (-1: no limit)", ge=-1)
    limit_train_batches: Any = setting(None, "int: batches per epoch, float: fraction (Lightning)")
    limit_val_batches: Any = setting(None, "int: batches, float: fraction (0: no validation)")
    devices: Any = setting(1, "devices per node (Lightning)")
    num_nodes: int = setting(1, "nodes", ge=1)
    accelerator: str = setting("auto", "cpu, gpu, auto (Lightning)")
    strategy: str = setting("auto", "auto, ddp, ... (Lightning)")
    precision: str = setting("32-true", "Lightning's precision: 32-true; 16-mixed (float16 autocast on GPU, bfloat16 "
                             "on CPU); bf16-mixed (bfloat16 autocast, CPU and Ampere+ GPUs)",
                             choices=("32-true", "16-mixed", "bf16-mixed"))
    compile: bool = setting(False, "torch.compile the backbone and heads in place (solo_equimod.speed): faster steps "
                            "after a first, slow one; checkpoints stay interchangeable with uncompiled runs")
    channels_last: bool = setting(False, "weights and backbone inputs in channels-last (NHWC) memory order: faster "
                                  "convolutions on GPUs with tensor cores, mostly with 16-mixed / bf16-mixed")
    sync_batchnorm: bool = setting(False, "synchronise BatchNorm statistics across processes")
    seed: int = setting(5, "global seed")
    log_dir: str = setting("outputs", "log folder")
    log_every_n_steps: int = setting(50, "steps between logged rows", ge=1)

    def check(self, cfg: DictConfig) -> None:
        if self.max_epochs == 0 or (self.max_epochs == -1 and self.max_steps == -1):
            raise ConfigError(f"max_epochs={self.max_epochs} is invalid: must be a positive number of epochs (or -1 "
                              f"with a positive max_steps)")
        if self.max_steps == 0:
            raise ConfigError("max_steps=0 is invalid: must be -1 (no limit) or positive")
        _check_limit("limit_train_batches", self.limit_train_batches, allow_zero=False)
        _check_limit("limit_val_batches", self.limit_val_batches, allow_zero=True)


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
    except ConfigKeyError as err:
        raise ConfigError(unknown_key_message(schema, str(err.full_key))) from None
    except OmegaConfBaseException as err:  # a wrong type
        raise ConfigError(f"{err.full_key}: {err.msg.splitlines()[0]}") from None
    missing = _missing_keys(merged)
    if missing:
        raise ConfigError(f"missing required config key(s): {', '.join(missing)}")
    if "method" not in merged:
        return merged
    if merged.method not in METHODS:
        raise ConfigError(f"method={merged.method!r} is unknown; valid: {', '.join(sorted(METHODS))}")
    merged.name = str(merged.name)  # `${method}` in a name means the method as written, alias included
    return complete_method_kwargs(canonical_config(merged))


def complete_method_kwargs(cfg: DictConfig) -> DictConfig:
    """`method_kwargs` of a canonical config checked against the method's declaration and completed
    with its defaults, so the saved config names every setting."""
    settings = parse_settings(METHODS[cfg.method].SETTINGS, cfg.get("method_kwargs"), "method_kwargs")
    with open_dict(cfg):
        cfg.method_kwargs = dataclasses.asdict(settings)
    return cfg
