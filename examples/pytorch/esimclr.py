"""E-SimCLR (Dangovski et al., ICLR 2022) in plain PyTorch, in lightly's example style.

Next to SimCLR, a head predicts which of the four rotations (0, 90, 180, 270 degrees) a small
extra view (16 px, scale 0.2-1, rdangovs/essl cifar10) went through; L = L_SimCLR + 0.4 CE.
The dataset transform makes the four rotated views as a named extra input.

    python examples/pytorch/esimclr.py               # CIFAR-10, downloaded into datasets/cifar10
"""

from __future__ import annotations

import functools

import torch
import torchvision
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import nn
from torch.utils.data import DataLoader

from solo_equimod.augment.pretext import policy_variant, rotated_views
from solo_equimod.blocks import ParamViews, ViewPolicy, make_objective

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
POLICY = ViewPolicy(crop_size=32, crop_min_scale=0.08, saturation=0.4)
ROTATION_VIEW = policy_variant(POLICY, crop_size=16, crop_min_scale=0.2, crop_max_scale=1.0)


class ESimCLR(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        resnet = torchvision.models.resnet18()
        self.backbone = nn.Sequential(*list(resnet.children())[:-1], nn.Flatten())
        self.projection_head = SimCLRProjectionHead(512, 512, 128)
        self.rotation = make_objective("rotation", 512, [POLICY, POLICY], dataset="cifar10")  # lambda 0.4

    def forward(self, views: list[torch.Tensor], rotations: list[torch.Tensor]):
        z0, z1 = self.projection_head(self.backbone(torch.cat(views))).chunk(2)
        h_rotations = list(self.backbone(torch.cat(rotations)).chunk(4))  # the 4N rotated views in a call of their own
        rotation = self.rotation({}, {"extras.rotation": h_rotations})
        return z0, z1, rotation["loss"]


def cifar10(transform: ParamViews) -> torch.utils.data.Dataset:
    return torchvision.datasets.CIFAR10("datasets/cifar10", download=True, transform=transform)


def main(make_dataset=cifar10, epochs: int = 10, batch_size: int = 256, max_steps: int | None = None,
         device: str = "cuda" if torch.cuda.is_available() else "cpu") -> tuple[nn.Module, list[float]]:
    model = ESimCLR().to(device)
    rotations = functools.partial(rotated_views, policy=ROTATION_VIEW, mean=CIFAR_MEAN, std=CIFAR_STD)
    transform = ParamViews([POLICY, POLICY], CIFAR_MEAN, CIFAR_STD, extras={"rotation": rotations})
    dataloader = DataLoader(make_dataset(transform), batch_size=batch_size, shuffle=True, drop_last=True)
    criterion = NTXentLoss(temperature=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.06)
    losses: list[float] = []
    for epoch in range(epochs):
        for (views, _, extras), _ in dataloader:
            rotated = [x.to(device) for x in extras["rotation"]]
            z0, z1, rotation_loss = model([v.to(device) for v in views], rotated)
            loss = criterion(z0, z1) + model.rotation.weight * rotation_loss
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
