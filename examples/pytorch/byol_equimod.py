"""BYOL + EquiMod (Devillers & Lefort, ICLR 2023) in plain PyTorch, in lightly's example style.

BYOL's online network predicts the momentum network's projection of the other view; EquiMod, on
the online backbone, predicts each view's equivariant embedding from the original's and the
view's augmentation parameters (18-d on CIFAR-10: BYOL keeps blur and solarize, paper A.1).

    python examples/pytorch/byol_equimod.py          # CIFAR-10, downloaded into datasets/cifar10
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
import torchvision
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn
from torch.utils.data import DataLoader

from solo_equimod.blocks import ParamViews, ViewPolicy, make_objective, prepare_objective

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
# BYOL's asymmetric policy as EquiMod's CIFAR-10 recipe (A.1; official src/dataset.py)
BASE = ViewPolicy(crop_size=32, crop_min_scale=0.2, interpolation="bicubic", saturation=0.2)
POLICIES = [replace(BASE, blur_prob=1.0), replace(BASE, blur_prob=0.1, solarize_prob=0.2)]


class BYOLEquiMod(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        resnet = torchvision.models.resnet18()
        self.backbone = nn.Sequential(*list(resnet.children())[:-1], nn.Flatten())
        self.projection_head = BYOLProjectionHead(512, 1024, 256)
        self.prediction_head = BYOLPredictionHead(256, 1024, 256)
        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_head_momentum)
        self.equimod = make_objective("equimod", 512, POLICIES, proj_hidden_dim=1024)

    def forward_momentum(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection_head_momentum(self.backbone_momentum(x)).detach()

    def forward(self, views: list[torch.Tensor], params: list[torch.Tensor], original: torch.Tensor):
        h_original, *h_views = self.backbone(torch.cat([original, *views])).chunk(3)
        p0, p1 = self.prediction_head(self.projection_head(torch.cat(h_views))).chunk(2)
        equimod = self.equimod({"params": params}, {"original": h_original, "views": h_views})
        return (p0, p1), equimod["loss"]


def cifar10(transform: ParamViews) -> torch.utils.data.Dataset:
    return torchvision.datasets.CIFAR10("datasets/cifar10", download=True, transform=transform)


def main(make_dataset=cifar10, epochs: int = 10, batch_size: int = 256, max_steps: int | None = None,
         device: str = "cuda" if torch.cuda.is_available() else "cpu") -> tuple[nn.Module, list[float]]:
    model = BYOLEquiMod()
    transform = ParamViews(POLICIES, CIFAR_MEAN, CIFAR_STD, original=True)
    prepare_objective(model.equimod, transform, [(32, 32)])
    model.to(device)
    dataloader = DataLoader(make_dataset(transform), batch_size=batch_size, shuffle=True, drop_last=True)
    criterion = NegativeCosineSimilarity()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.06)
    losses: list[float] = []
    for epoch in range(epochs):
        momentum = cosine_schedule(epoch, epochs, 0.996, 1)
        for (views, params, original), _ in dataloader:
            update_momentum(model.backbone, model.backbone_momentum, m=momentum)
            update_momentum(model.projection_head, model.projection_head_momentum, m=momentum)
            views, params = [v.to(device) for v in views], [p.to(device) for p in params]
            (p0, p1), equimod_loss = model(views, params, original.to(device))
            z0, z1 = model.forward_momentum(views[0]), model.forward_momentum(views[1])
            loss = 0.5 * (criterion(p0, z1) + criterion(p1, z0)) + model.equimod.weight * equimod_loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            if max_steps is not None and len(losses) >= max_steps:
                return model, losses
        print(f"epoch: {epoch:>02}, loss: {sum(losses[-len(dataloader):]) / len(dataloader):.5f}")
    return model, losses


if __name__ == "__main__":
    main()
