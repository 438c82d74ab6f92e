"""The linear probe: one linear layer on a frozen backbone's features, top-1 and top-5 accuracy."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightly.utils.benchmarking.topk import mean_topk_accuracy
from torch import nn

from solo_equimod.data.batch import LabelledBatch
from solo_equimod.errors import ConfigError
from solo_equimod.eval.linear_config import LinearOptimizerConfig


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
