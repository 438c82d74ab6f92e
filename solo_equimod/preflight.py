"""The checks a pretraining config allows before any dataset is read or file written.

`config.validate` catches unknown keys, wrong types and missing values; this module catches
values of the right type that cannot work (a zero batch size, a hue range past 0.5, DALI on a
dataset without a folder, ...). Each error is a ConfigError naming the key, the value and what is
valid. The checks that need the data (a batch larger than the dataset, validation classes, image
sizes) are in `solo_equimod.data.checks`, run right after the dataset index is built.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from solo_equimod.augment import policies_from_config
from solo_equimod.config import ConfigError
from solo_equimod.data.datasets import DATASETS, FOLDER_DATASETS, VIEW_DATASETS
from solo_equimod.data.pretrain import FORMATS
from solo_equimod.data.views3d import GROUPS
from solo_equimod.optim import OPTIMIZERS, SCHEDULERS


def _require(ok: bool, key: str, value: Any, valid: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: {valid}")


def _check_limit(key: str, value: Any, allow_zero: bool) -> None:
    """Lightning's `limit_*_batches`: null, a count of batches, or a fraction of the epoch."""
    low = "0" if allow_zero else "1"
    valid = f"use null (all), an integer >= {low} (batches) or a fraction in ({low if allow_zero else 0}, 1]"
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _require(False, key, value, valid)
    elif isinstance(value, int):
        _require(value >= (0 if allow_zero else 1), key, value, valid)
    else:
        _require((0.0 <= value if allow_zero else 0.0 < value) and value <= 1.0, key, value, valid)


def _check_data(data: DictConfig) -> None:
    _require(data.dataset in DATASETS, "data.dataset", data.dataset, f"valid names: {', '.join(DATASETS)}")
    _require(data.format in FORMATS, "data.format", data.format, f"valid: {', '.join(FORMATS)}")
    if data.format == "dali":
        _require(data.dataset in FOLDER_DATASETS, "data.format", data.format,
                 f"DALI reads an image folder: use it with data.dataset one of {', '.join(FOLDER_DATASETS)} "
                 f"(data.dataset={data.dataset!r} has no folder), or data.format=image_folder")
    if data.dataset in FOLDER_DATASETS:
        _require(data.train_path is not None, "data.train_path", data.train_path,
                 f"data.dataset={data.dataset!r} needs the training split folder (one sub-folder of images per class)")
    _require(data.tensor_budget_gb > 0, "data.tensor_budget_gb", data.tensor_budget_gb,
             "must be > 0 (GB of memory the decoded training set of data.format=tensor may take)")
    if data.dataset == "3diebench":
        _require(data.train_path is not None, "data.train_path", data.train_path,
                 "data.dataset='3diebench' needs the dataset root (the folder holding train_images.npy and the synsets)")
    _require(data.group in GROUPS, "data.group", data.group, f"valid: {', '.join(GROUPS)}")
    _require(data.num_workers >= 0, "data.num_workers", data.num_workers, "must be >= 0 (0: load in the main process)")
    for key in ("num_classes", "synthetic_size"):
        _require(data[key] is None or data[key] >= 1, f"data.{key}", data[key], "must be null or a positive integer")
    for key in ("resize", "center_crop"):
        value = data.original[key]
        _require(value is None or value >= 1, f"data.original.{key}", value, "must be null or a positive number of pixels")


def _check_training(cfg: DictConfig) -> None:
    opt, sched, ckpt = cfg.optimizer, cfg.scheduler, cfg.checkpoint
    _require(cfg.max_epochs >= 1 or (cfg.max_epochs == -1 and cfg.max_steps >= 1), "max_epochs", cfg.max_epochs,
             "must be a positive number of epochs (or -1 with a positive max_steps)")
    _require(cfg.max_steps == -1 or cfg.max_steps >= 1, "max_steps", cfg.max_steps, "must be -1 (no limit) or positive")
    _require(opt.batch_size >= 1, "optimizer.batch_size", opt.batch_size, "must be a positive number of images")
    _require(opt.name in OPTIMIZERS, "optimizer.name", opt.name, f"valid: {', '.join(OPTIMIZERS)}")
    _require(opt.lr > 0, "optimizer.lr", opt.lr, "must be positive")
    _require(opt.classifier_lr > 0, "optimizer.classifier_lr", opt.classifier_lr, "must be positive")
    _require(opt.weight_decay >= 0, "optimizer.weight_decay", opt.weight_decay, "must be >= 0")
    _require(sched.name in SCHEDULERS, "scheduler.name", sched.name, f"valid: {', '.join(SCHEDULERS)}")
    _require(sched.warmup_epochs >= 0, "scheduler.warmup_epochs", sched.warmup_epochs, "must be >= 0")
    _require(ckpt.keep_epochs >= 1 or ckpt.keep_epochs == -1, "checkpoint.keep_epochs", ckpt.keep_epochs,
             "use a positive count, or -1 to keep all")
    _require(ckpt.frequency >= 1, "checkpoint.frequency", ckpt.frequency, "must be a positive number of epochs")
    _require(ckpt.every_n_steps >= 0, "checkpoint.every_n_steps", ckpt.every_n_steps,
             "must be >= 1, or 0 to turn step checkpoints off")
    _require(ckpt.keep_steps >= 1, "checkpoint.keep_steps", ckpt.keep_steps, "must be >= 1")
    _require(cfg.log_every_n_steps >= 1, "log_every_n_steps", cfg.log_every_n_steps, "must be >= 1")
    _require(cfg.num_nodes >= 1, "num_nodes", cfg.num_nodes, "must be >= 1")
    _check_limit("limit_train_batches", cfg.limit_train_batches, allow_zero=False)
    _check_limit("limit_val_batches", cfg.limit_val_batches, allow_zero=True)


def _check_no_augmentation(dataset: str, policies: list) -> None:
    """The views of a dataset of renderings are the renderings (SIE: Resize + Normalize only)."""
    for i, p in enumerate(policies):
        applied = [key for key, on in (("rrc.enabled", p.rrc_enabled), ("horizontal_flip.prob", p.flip_prob > 0),
                                       ("color_jitter.prob", p.jitter_prob > 0), ("grayscale.prob", p.gray_prob > 0),
                                       ("gaussian_blur.prob", p.blur_prob > 0), ("solarization.prob", p.solarize_prob > 0))
                   if on]
        _require(not applied, f"augmentations (view {i})", applied,
                 f"data.dataset={dataset!r} shows renderings as they are (SIE: Resize + Normalize only); turn these "
                 f"off, e.g. with scripts/pretrain/factors3d/augmentations/none.yaml")


def check_pretrain_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value of a validated pretraining config that cannot work;
    reads no data and writes nothing."""
    _check_data(cfg.data)
    _check_training(cfg)
    try:
        policies = policies_from_config(cfg.augmentations)
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(str(err.args[0]) if err.args else str(err)) from err
    if cfg.data.dataset in VIEW_DATASETS:
        _check_no_augmentation(cfg.data.dataset, policies)
    if cfg.data.format == "dali":
        from solo_equimod.data.dali_loader import require_dali

        require_dali()
