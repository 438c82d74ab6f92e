"""Linear evaluation of a frozen backbone (EquiMod paper Sec. 3.2.1): SGD with Nesterov momentum
0.9, lr 0.2, cosine decay, 90 epochs, batch 256, no weight decay; top-1 and top-5.

Where the paper is silent, the official code decides (src/dataset.py, src/main.py): training views
are RandomResizedCrop (bicubic) + flip, the test view is Resize(36, bicubic) + CenterCrop(32) on
CIFAR-size data (Resize(256) + CenterCrop(224) on ImageNet-size data), and the cosine decays per
step down to 1e-4. `augment: true` (default, `main_linear.py` and `python -m solo_equimod.eval
linear` alike) is that protocol; `augment: false` extracts the features once and trains on them
without augmentation, a fast variant for CPUs. Every report says which was used.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from solo_equimod.data.batch import LabelledDataset
from solo_equimod.data.checks import check_splits
from solo_equimod.data.describe import num_classes_of
from solo_equimod.data.pretrain import build_split
from solo_equimod.errors import ConfigError
from solo_equimod.eval.features import extract_features
from solo_equimod.eval.linear_classifier import LinearClassifier
from solo_equimod.eval.linear_config import LinearConfig
from solo_equimod.eval.linear_transforms import evaluation_view, test_transform, train_transform
from solo_equimod.eval.loading import load_for_eval
from solo_equimod.eval.reports import method_label, report_path
from solo_equimod.methods import BaseMethod
from solo_equimod.run.atomic import refuse_existing, write_json
from solo_equimod.run.progress import progress_callback


def run_linear(raw_cfg: DictConfig) -> dict[str, float]:
    """Train and evaluate the linear probe; writes and returns {"top1", "top5", ...}."""
    cfg, method = load_for_eval(raw_cfg, LinearConfig)
    kind = "linear_random_init" if cfg.random_init else "linear"
    output = Path(cfg.output) if cfg.output else report_path(cfg.pretrained_feature_extractor, kind, cfg.data.dataset)
    refuse_existing([output], cfg.overwrite, flag="overwrite=true")
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.random_init and not isinstance(method, BaseMethod):
        raise ConfigError("random_init=true rebuilds a solo-equimod checkpoint's architecture; for a backbone from "
                          "elsewhere give its architecture without weights (e.g. timm:resnet18)")
    if cfg.random_init:  # drawn from its own seeded stream: the probe's own draws stay those of a trained run
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            method = type(method)(method.cfg)
    backbone = method.backbone
    crop_size = int(method.cfg.augmentations[0].crop_size)
    eval_tf = test_transform(cfg, crop_size)
    train_tf = train_transform(method.cfg, cfg) if cfg.augment else eval_tf
    train_set, val_set = build_split(cfg, "train", train_tf), build_split(cfg, "val", eval_tf)
    if val_set is None:
        raise ConfigError("linear evaluation needs validation data: set data.val_path")
    check_splits(cfg, train_set, val_set)
    num_classes = num_classes_of(train_set)  # the evaluation data's, whatever the pretraining data had

    def loader(ds: Dataset, shuffle: bool, workers: int = cfg.data.num_workers) -> DataLoader:
        return DataLoader(LabelledDataset(ds), batch_size=cfg.optimizer.batch_size, shuffle=shuffle, num_workers=workers)

    train_loader, val_loader = loader(train_set, True), loader(val_set, False)
    model_backbone: nn.Module | None = backbone
    if not cfg.augment:  # cached features are in memory: workers would only add their start-up to every epoch
        train_loader = loader(TensorDataset(*extract_features(backbone, loader(train_set, False), "train features")),
                              True, workers=0)
        val_loader = loader(TensorDataset(*extract_features(backbone, val_loader, "val features")), False, workers=0)
        model_backbone = None
    model = LinearClassifier(model_backbone, method.features_dim, num_classes, cfg.optimizer, cfg.min_lr)
    trainer = pl.Trainer(max_epochs=cfg.max_epochs, accelerator=cfg.accelerator, devices=cfg.devices,
                         precision=cfg.precision, logger=False, enable_checkpointing=False,
                         check_val_every_n_epoch=cfg.max_epochs, callbacks=[progress_callback()])
    trainer.fit(model, train_loader, val_loader)
    metrics = trainer.callback_metrics
    resize, crop, interpolation = evaluation_view(cfg, crop_size)
    protocol = ("augmented: RandomResizedCrop + flip through the frozen backbone (paper Sec. 3.2.1, official code)"
                if cfg.augment else "feature-caching: features extracted once, no augmentation (fast variant)")
    result = {"top1": float(metrics["val_acc1"]) * 100, "top5": float(metrics["val_acc5"]) * 100,
              "dataset": cfg.data.dataset, "num_classes": num_classes, "epochs": cfg.max_epochs, "augment": cfg.augment,
              "protocol": protocol, "test_view": f"Resize({resize}, {interpolation}) + CenterCrop({crop})",
              "min_lr": cfg.min_lr, "random_init": cfg.random_init, "method": method_label(method),
              "checkpoint": str(cfg.pretrained_feature_extractor)}
    write_json(result, output)
    return result
