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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from lightly.utils.benchmarking.topk import mean_topk_accuracy
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.transforms import v2
from tqdm import tqdm

from solo_equimod.config.components import COMPONENTS
from solo_equimod.config.schema import DataConfig
from solo_equimod.data.batch import LabelledBatch, LabelledDataset
from solo_equimod.data.checks import check_splits
from solo_equimod.data.datasets import DATASET_INFO, num_classes_of
from solo_equimod.data.pretrain import build_split
from solo_equimod.errors import ConfigError
from solo_equimod.eval.loading import load_for_eval
from solo_equimod.eval.reports import method_label, report_path
from solo_equimod.methods import BaseMethod
from solo_equimod.run.atomic import refuse_existing, write_json
from solo_equimod.run.progress import progress_callback


@dataclass
class LinearOptimizerConfig:
    name: str = "sgd"
    batch_size: int = 256  # Sec. 3.2.1
    lr: float = 0.2  # Sec. 3.2.1
    weight_decay: float = 0.0  # Sec. 3.2.1: no weight decay
    momentum: float = 0.9  # Sec. 3.2.1: Nesterov momentum 0.9
    nesterov: bool = True


@dataclass
class TestViewConfig:
    """The deterministic view of evaluation images; null keys: the dataset's default (see `test_view`)."""

    resize: Optional[int] = None  # shorter side; CIFAR-size crops (32): 36, ImageNet-size: 256 (official code)
    center_crop: Optional[int] = None  # CIFAR-size: 32, ImageNet-size: 224
    interpolation: str = "bicubic"  # official code, src/dataset.py


@dataclass
class LinearConfig:
    name: str = "linear"
    pretrained_feature_extractor: str = "???"
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: LinearOptimizerConfig = field(default_factory=LinearOptimizerConfig)
    max_epochs: int = 90  # Sec. 3.2.1
    min_lr: float = 1e-4  # the per-step cosine ends here (official code, src/main.py)
    augment: bool = True
    # the baseline: the checkpoint's architecture freshly initialised (seeded), through the same protocol
    random_init: bool = False
    test_view: TestViewConfig = field(default_factory=TestViewConfig)
    accelerator: str = "auto"
    devices: Any = 1
    precision: str = "32-true"
    seed: int = 5
    output: Optional[str] = None  # JSON report path; default: linear_<dataset>-<checkpoint stem>.json next to it
    overwrite: bool = False  # replace existing report files (else refused before the evaluation runs)


COMPONENTS.schemas["linear"] = LinearConfig  # the command line registers it with Hydra (config.hydra_schemas)


class LinearClassifier(pl.LightningModule):
    """A linear layer on frozen features (`backbone=None`: the inputs are features already)."""

    def __init__(self, backbone: nn.Module | None, features_dim: int, num_classes: int,
                 opt: LinearOptimizerConfig, min_lr: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        if backbone is not None:
            backbone.requires_grad_(False)
        self.classifier = nn.Linear(features_dim, num_classes)
        self.opt, self.min_lr = opt, min_lr
        self.val_preds: list[torch.Tensor] = []
        self.val_targets: list[torch.Tensor] = []

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.backbone is None:
            return x
        self.backbone.eval()  # frozen: BatchNorm statistics stay those of pretraining
        with torch.no_grad():
            return self.backbone(x)

    def training_step(self, batch: LabelledBatch, batch_idx: int) -> torch.Tensor:
        x, y = batch["image"], batch["target"]
        loss = nn.functional.cross_entropy(self.classifier(self.features(x)), y)
        self.log("train_loss", loss, prog_bar=True, batch_size=y.shape[0])
        return loss

    def validation_step(self, batch: LabelledBatch, batch_idx: int) -> None:
        x, y = batch["image"], batch["target"]
        k = min(5, self.classifier.out_features)  # top-5 of fewer than 5 classes is top-all
        self.val_preds.append(self.classifier(self.features(x)).topk(k, dim=1).indices.cpu())
        self.val_targets.append(y.cpu())

    def on_validation_epoch_end(self) -> None:
        if not self.val_preds:
            return
        k = (1, min(5, self.classifier.out_features))
        acc = mean_topk_accuracy(torch.cat(self.val_preds), torch.cat(self.val_targets), k=k)
        self.log_dict({"val_acc1": acc[1], "val_acc5": acc[k[1]]}, prog_bar=True)
        self.val_preds.clear()
        self.val_targets.clear()

    def configure_optimizers(self) -> Any:
        if self.opt.name != "sgd":
            raise ConfigError(f"optimizer.name={self.opt.name!r}: linear evaluation uses 'sgd' (Sec. 3.2.1)")
        optimizer = torch.optim.SGD(self.classifier.parameters(), lr=self.opt.lr, momentum=self.opt.momentum,
                                    nesterov=self.opt.nesterov, weight_decay=self.opt.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, int(self.trainer.estimated_stepping_batches)), eta_min=self.min_lr)
        return [optimizer], [{"scheduler": scheduler, "interval": "step"}]


@torch.no_grad()
def extract_features(backbone: nn.Module, loader: DataLoader, desc: str = "features") -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-backbone features and targets of a whole loader of `LabelledBatch`es, with a progress bar."""
    backbone.eval()
    feats, targets = [], []
    for batch in tqdm(loader, desc=desc, leave=False):
        feats.append(backbone(batch["image"]))
        targets.append(batch["target"])
    return torch.cat(feats), torch.cat(targets)


def evaluation_view(cfg: DictConfig, crop_size: int) -> tuple[int, int, str]:
    """(resize, center crop, interpolation) of the evaluation view: the configured values, else the
    official code's for the pretraining crop size (CIFAR-size, 32: 36 / 32; ImageNet-size: 256 / 224)."""
    default = (round(crop_size * 36 / 32), crop_size) if crop_size <= 64 else (256, 224)
    view = cfg.test_view
    return (view.resize or default[0], view.center_crop or default[1], view.interpolation)


def _normalize(dataset: str) -> list[v2.Transform]:
    info = DATASET_INFO[dataset]
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std)]


def _test_transform(cfg: DictConfig, crop_size: int) -> v2.Compose:
    resize, crop, interpolation = evaluation_view(cfg, crop_size)
    mode = v2.InterpolationMode(interpolation)
    return v2.Compose([v2.ToImage(), v2.Resize(resize, interpolation=mode, antialias=True), v2.CenterCrop(crop),
                       *_normalize(cfg.data.dataset)])


def _train_transform(pretrain_cfg: DictConfig, cfg: DictConfig) -> v2.Compose:
    """RandomResizedCrop (scale 0.08-1, bicubic as the official code) + horizontal flip."""
    crop = int(pretrain_cfg.augmentations[0].crop_size)
    mode = v2.InterpolationMode(cfg.test_view.interpolation)
    return v2.Compose([v2.ToImage(), v2.RandomResizedCrop(crop, interpolation=mode, antialias=True),
                       v2.RandomHorizontalFlip(), *_normalize(cfg.data.dataset)])


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
    eval_tf = _test_transform(cfg, crop_size)
    train_tf = _train_transform(method.cfg, cfg) if cfg.augment else eval_tf
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

