"""Every shipped pretraining config trains a step at the precision it declares.

The configs declare `precision: 16-mixed` (the CIFAR, STL-10, ImageNet, ImageNet-100 and 3DIEBench
recipes, CARE's among them) or `32-true`, and the other tests train at `32-true`. Here each config
under `scripts/pretrain/<folder>/` is composed with Hydra, made tiny (tiny_cnn, narrow heads, a
batch of synthetic images, one step; nothing that decides the precision or the objectives), and
trained for one step on CPU at its own `precision`, where Lightning runs `16-mixed` as bfloat16
autocast. Each step must give a finite loss, and the backbone's output inside the step must have the
dtype the declared precision implies on CPU (`EXPECTED_DTYPE`, written here, not read from Lightning).

Stand-ins for data that is not on the machine (`STAND_IN`): the image datasets become `synthetic`,
3DIEBench the procedural `factors3d` (view pairs with group elements, as SIE needs); DALI loading
(the ImageNet recipes) becomes `image_folder`, since DALI reads files and the precision of the step
does not depend on the loader. No config is skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from solo_equimod.config.schema import validate
from solo_equimod.data.describe import num_classes_of
from solo_equimod.data.pretrain import PretrainDataModule
from solo_equimod.methods import METHODS
from solo_equimod.objectives.compose import pipeline_requests
from tests.conftest import TEST_HEAD_WIDTH, narrow_heads
from tests.helpers.configs import PRETRAIN, compose_config

CONFIGS = sorted(str(p.relative_to(PRETRAIN).with_suffix("")) for p in PRETRAIN.glob("*/*.yaml")
                 if not p.name.startswith("_"))
# what a CPU step computes in under each declared precision: Lightning's 16-mixed is bf16 autocast on CPU
EXPECTED_DTYPE = {"16-mixed": torch.bfloat16, "bf16-mixed": torch.bfloat16, "32-true": torch.float32}
STAND_IN = {"cifar10": "synthetic", "cifar100": "synthetic", "stl10": "synthetic", "imagenet": "synthetic",
            "imagenet100": "synthetic", "3diebench": "factors3d"}
SIZE = 32  # the largest view side: ImageNet's 224 px (3DIEBench's 256) scaled down with everything sized like it
TINY_WIDTH = 8  # tiny_cnn width: 4 * 8 = 32 feature dimensions
FEATURE_DIMS = {"resnet18": 512, "resnet50": 2048}  # the declared backbones' widths (tiny_cnn: 4 * width)
BATCH = 8  # images per step (CARE: two per chunk); the per-image loaders dominate the time




def tiny(cfg: DictConfig, tmp_path: Path) -> DictConfig:
    """`cfg` at test scale: tiny_cnn, stand-in data, one process on CPU, one batch of one step, heads
    (hidden and output) `TEST_HEAD_WIDTH` wide, views `SIZE` px, a short MoCo queue, fewer EquiMod
    statistics samples, SIE's equivariant share of the narrower features. The precision, method and
    objectives (with their weights and chunks) stay as declared."""
    cfg = validate(cfg)
    declared = cfg.backbone.name
    declared_dim = FEATURE_DIMS.get(declared, 4 * cfg.backbone.kwargs.get("width", 32))
    care = cfg.objectives.get("care")
    batch = max(BATCH, 2 * care.chunks) if care is not None else BATCH  # CARE's chunks need >= 2 images each
    dataset = STAND_IN.get(cfg.data.dataset, cfg.data.dataset)
    overrides: dict[str, Any] = {
        "backbone.name": "tiny_cnn", "backbone.kwargs": {"width": TINY_WIDTH},
        "data.dataset": dataset, "data.train_path": None, "data.val_path": None, "data.num_workers": 0,
        "data.download": False, "data.synthetic_size": batch if dataset == "synthetic" else None,
        "data.num_classes": None,
        "data.format": "image_folder" if cfg.data.format == "dali" else cfg.data.format,
        "optimizer.batch_size": batch, "checkpoint.enabled": False, "checkpoint.dir": str(tmp_path),
        "devices": 1, "num_nodes": 1, "strategy": "auto", "sync_batchnorm": False, "accelerator": "cpu",
        "max_epochs": 1, "max_steps": 1, "limit_train_batches": 1, "limit_val_batches": 0,
    }
    overrides.update({f"method_kwargs.{k}": TEST_HEAD_WIDTH for k, v in cfg.method_kwargs.items()
                      if k.endswith("output_dim") and v > TEST_HEAD_WIDTH})  # VICReg's 8192-d covariances
    if care is not None and care.images_per_process is not None:
        overrides["objectives.care.images_per_process"] = batch
    if "equimod" in cfg.objectives:
        overrides["objectives.equimod.param_stats_samples"] = 256
    if cfg.method == "sie":  # the equivariant share of the features, as declared
        overrides["method_kwargs.equi_dim"] = cfg.method_kwargs.get("equi_dim", 256) * 4 * TINY_WIDTH // declared_dim
    if cfg.method == "mocov2":
        overrides["method_kwargs.queue_size"] = 4 * batch
    overrides.update(scaled_sizes(cfg))
    for key, value in overrides.items():  # replaced, not merged: the declared backbone's kwargs go too
        OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    return narrow_heads(cfg, TEST_HEAD_WIDTH)


def scaled_sizes(cfg: DictConfig) -> dict[str, Any]:
    """Overrides that shrink the views so the first is `SIZE` px: every crop size, the original view's
    resize and centre crop, and the objectives' own view sizes, in proportion (nothing when it is
    `SIZE` or smaller already). The step's arithmetic, hence its precision, does not depend on them."""
    factor = SIZE / cfg.augmentations[0].crop_size
    if factor >= 1:
        return {}
    size = lambda px: max(8, round(px * factor))  # noqa: E731
    keys = [f"augmentations.{i}.crop_size" for i in range(len(cfg.augmentations))]
    keys += ["data.original.resize", "data.original.center_crop", "objectives.care.augmentation.crop_size",
             "objectives.rotation.crop_size"]
    return {key: size(OmegaConf.select(cfg, key)) for key in keys if OmegaConf.select(cfg, key) is not None}


@dataclass
class StepRecord:
    """What one training step showed: its SSL loss and the backbone output dtypes inside the step."""

    loss: float
    feature_dtypes: set[torch.dtype]


class _LossRecorder(pl.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.losses.append(float(trainer.callback_metrics["train_loss"]))


def train_one_step(cfg: DictConfig) -> StepRecord:
    """One optimiser step of `cfg` under a Trainer built with the config's own `precision`."""
    pl.seed_everything(cfg.seed)
    datamodule = PretrainDataModule(cfg, pipeline_requests(cfg))
    cfg.data.num_classes = num_classes_of(datamodule.train_set)
    model = METHODS[cfg.method](cfg)
    model.prepare_objectives(datamodule)
    dtypes: set[torch.dtype] = set()
    model.backbone.register_forward_hook(lambda _m, _i, out: dtypes.add(out.dtype))
    recorder = _LossRecorder()
    trainer = pl.Trainer(accelerator="cpu", devices=1, precision=cfg.precision, max_steps=1, limit_train_batches=1,
                         limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[recorder])
    trainer.fit(model, datamodule=datamodule)
    assert len(recorder.losses) == 1, "the step did not run"
    return StepRecord(recorder.losses[0], dtypes)


def test_every_shipped_config_is_walked() -> None:
    """No pretraining config below scripts/pretrain escapes the parametrisation (augmentation lists and
    `_`-prefixed shared parts are not configs of their own)."""
    shipped = {str(p.relative_to(PRETRAIN).with_suffix("")) for p in PRETRAIN.rglob("*.yaml")
               if not p.name.startswith("_") and p.parent.name != "augmentations"}
    assert shipped == set(CONFIGS) and len(CONFIGS) >= 80


@pytest.mark.parametrize("config", CONFIGS)
def test_config_trains_a_step_at_its_declared_precision(config: str, tmp_path: Path) -> None:
    cfg = tiny(compose_config(config), tmp_path)
    assert cfg.precision in EXPECTED_DTYPE, f"{config}: precision {cfg.precision!r} has no expected dtype here"
    record = train_one_step(cfg)
    assert math.isfinite(record.loss), f"{config}: loss {record.loss} at precision {cfg.precision}"
    assert record.feature_dtypes == {EXPECTED_DTYPE[cfg.precision]}, \
        f"{config}: declared {cfg.precision}, the step computed features in {record.feature_dtypes}"
