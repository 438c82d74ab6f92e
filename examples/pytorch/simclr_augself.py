"""SimCLR + AugSelf (Lee et al., NeurIPS 2021) in plain PyTorch, in lightly's example style.

From the two views' backbone features, AugSelf's MLPs predict the difference of their crops and
colour-jitter factors, read from the raw parameters the dataset transform returns.

    python examples/pytorch/simclr_augself.py        # CIFAR-10, downloaded into datasets/cifar10
"""

from __future__ import annotations

import torch
import torchvision
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import nn
from torch.utils.data import DataLoader

from solo_equimod.blocks import ParamViews, ViewPolicy, make_objective

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
POLICY = ViewPolicy(crop_size=32, crop_min_scale=0.08, saturation=0.4)


class SimCLRAugSelf(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        resnet = torchvision.models.resnet18()
        self.backbone = nn.Sequential(*list(resnet.children())[:-1], nn.Flatten())
        self.projection_head = SimCLRProjectionHead(512, 512, 128)
        self.augself = make_objective("augself", 512, [POLICY, POLICY])  # crop + colour tasks, lambda 1

    def forward(self, views: list[torch.Tensor], params: list[torch.Tensor], image_size: torch.Tensor):
        h_views = list(self.backbone(torch.cat(views)).chunk(2))
        z0, z1 = self.projection_head(torch.cat(h_views)).chunk(2)
        augself = self.augself({"params": params, "image_size": image_size}, {"views": h_views})
        return z0, z1, augself["loss"]


def cifar10(transform: ParamViews) -> torch.utils.data.Dataset:
    return torchvision.datasets.CIFAR10("datasets/cifar10", download=True, transform=transform)


def main(make_dataset=cifar10, epochs: int = 10, batch_size: int = 256, max_steps: int | None = None,
         device: str = "cuda" if torch.cuda.is_available() else "cpu") -> tuple[nn.Module, list[float]]:
    model = SimCLRAugSelf().to(device)
    transform = ParamViews([POLICY, POLICY], CIFAR_MEAN, CIFAR_STD)
    dataloader = DataLoader(make_dataset(transform), batch_size=batch_size, shuffle=True, drop_last=True)
    image_size = torch.tensor([[32, 32]], device=device).expand(batch_size, 2)  # every CIFAR image is 32 x 32
    criterion = NTXentLoss(temperature=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.06)
    losses: list[float] = []
    for epoch in range(epochs):
        for (views, params), _ in dataloader:
            views, params = [v.to(device) for v in views], [p.to(device) for p in params]
            z0, z1, augself_loss = model(views, params, image_size)
            loss = criterion(z0, z1) + model.augself.weight * augself_loss
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
