"""SimCLR + EquiMod (Devillers & Lefort, ICLR 2023) with PyTorch Lightning, in lightly's example style.

    python examples/pytorch_lightning/simclr_equimod.py     # CIFAR-10, downloaded into datasets/cifar10
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torchvision
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import nn
from torch.utils.data import DataLoader

from solo_equimod.blocks import ParamViews, ViewPolicy, make_objective, prepare_objective

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
# EquiMod's CIFAR-10 policy (paper A.1; official src/dataset.py: scale 0.2-1, bicubic)
POLICY = ViewPolicy(crop_size=32, crop_min_scale=0.2, interpolation="bicubic", saturation=0.2)


class SimCLREquiMod(pl.LightningModule):
    def __init__(self, transform: ParamViews) -> None:
        super().__init__()
        resnet = torchvision.models.resnet18()
        self.backbone = nn.Sequential(*list(resnet.children())[:-1], nn.Flatten())
        self.projection_head = SimCLRProjectionHead(512, 512, 128)
        self.equimod = make_objective("equimod", 512, [POLICY, POLICY], proj_hidden_dim=512)
        prepare_objective(self.equimod, transform, [(32, 32)])  # the parameters' mean and std (A.1)
        self.criterion = NTXentLoss(temperature=0.5)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        (views, params, original), _ = batch
        # one backbone call: original and views share BatchNorm statistics, as the official code
        h_original, *h_views = self.backbone(torch.cat([original, *views])).chunk(3)
        z0, z1 = self.projection_head(torch.cat(h_views)).chunk(2)
        equimod_loss = self.equimod({"params": params}, {"original": h_original, "views": h_views})["loss"]
        loss = self.criterion(z0, z1) + self.equimod.weight * equimod_loss
        self.log_dict({"train_loss": loss, "equimod_loss": equimod_loss}, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.06)


def cifar10(transform: ParamViews) -> torch.utils.data.Dataset:
    return torchvision.datasets.CIFAR10("datasets/cifar10", download=True, transform=transform)


def main(make_dataset=cifar10, epochs: int = 10, batch_size: int = 256, max_steps: int = -1,
         accelerator: str = "auto") -> SimCLREquiMod:
    transform = ParamViews([POLICY, POLICY], CIFAR_MEAN, CIFAR_STD, original=True)
    model = SimCLREquiMod(transform)
    dataloader = DataLoader(make_dataset(transform), batch_size=batch_size, shuffle=True, drop_last=True)
    trainer = pl.Trainer(max_epochs=epochs, max_steps=max_steps, accelerator=accelerator, devices=1, logger=False,
                         enable_checkpointing=False)
    trainer.fit(model, dataloader)
    return model


if __name__ == "__main__":
    main()
