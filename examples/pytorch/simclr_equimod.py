"""SimCLR + EquiMod (Devillers & Lefort, ICLR 2023) in plain PyTorch, in lightly's example style.

Next to SimCLR's invariance loss, EquiMod predicts each view's embedding z'_i from the original
image's embedding and the view's augmentation parameters (Eq. 4: L = L_SimCLR + lambda L_EquiMod).
The dataset transform returns the views, their raw parameters and the original image.

    python examples/pytorch/simclr_equimod.py        # CIFAR-10, downloaded into datasets/cifar10
"""

from __future__ import annotations

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


class SimCLREquiMod(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        resnet = torchvision.models.resnet18()
        self.backbone = nn.Sequential(*list(resnet.children())[:-1], nn.Flatten())
        self.projection_head = SimCLRProjectionHead(512, 512, 128)
        self.equimod = make_objective("equimod", 512, [POLICY, POLICY], proj_hidden_dim=512)

    def forward(self, views: list[torch.Tensor], params: list[torch.Tensor],
                original: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # one backbone call: original and views share BatchNorm statistics, as the official code
        h_original, *h_views = self.backbone(torch.cat([original, *views])).chunk(3)
        z0, z1 = self.projection_head(torch.cat(h_views)).chunk(2)
        equimod = self.equimod({"params": params}, {"original": h_original, "views": h_views})
        return z0, z1, equimod["loss"]


def cifar10(transform: ParamViews) -> torch.utils.data.Dataset:
    return torchvision.datasets.CIFAR10("datasets/cifar10", download=True, transform=transform)


def main(make_dataset=cifar10, epochs: int = 10, batch_size: int = 256, max_steps: int | None = None,
         device: str = "cuda" if torch.cuda.is_available() else "cpu") -> tuple[nn.Module, list[float]]:
    model = SimCLREquiMod()
    transform = ParamViews([POLICY, POLICY], CIFAR_MEAN, CIFAR_STD, original=True)
    prepare_objective(model.equimod, transform, [(32, 32)])  # the parameters' mean and std (A.1)
    model.to(device)
    dataloader = DataLoader(make_dataset(transform), batch_size=batch_size, shuffle=True, drop_last=True)
    criterion = NTXentLoss(temperature=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.06)
    losses: list[float] = []
    for epoch in range(epochs):
        for (views, params, original), _ in dataloader:
            views, params = [v.to(device) for v in views], [p.to(device) for p in params]
            z0, z1, equimod_loss = model(views, params, original.to(device))
            loss = criterion(z0, z1) + model.equimod.weight * equimod_loss
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
