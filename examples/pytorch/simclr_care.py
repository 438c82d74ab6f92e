"""SimCLR + CARE (Gupta, Robinson et al., NeurIPS 2023) in plain PyTorch, in lightly's example style.

CARE splits the batch into chunks; every image of a chunk gets the same pair of augmentations,
drawn and applied on the training device from the uint8 originals (`BatchedViews` underneath), and
the chunks' Gram matrices of the two views' embeddings (SimCLR's own head) should agree.

    python examples/pytorch/simclr_care.py           # CIFAR-10, downloaded into datasets/cifar10
"""

from __future__ import annotations

import torch
import torchvision
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import nn
from torch.utils.data import DataLoader

from solo_equimod.blocks import ParamViews, ViewPolicy, make_objective, normalize

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
POLICY = ViewPolicy(crop_size=32, crop_min_scale=0.08, saturation=0.4)  # official cifar10 SimCLR views


class SimCLRCARE(nn.Module):
    def __init__(self, batch_size: int) -> None:
        super().__init__()
        resnet = torchvision.models.resnet18()
        self.backbone = nn.Sequential(*list(resnet.children())[:-1], nn.Flatten())
        self.projection_head = SimCLRProjectionHead(512, 512, 128)
        # 16 chunks of a 256-image batch (official scripts/cifar10.sh --equiv-splits 16), weight 0.03
        self.care = make_objective("care", 512, [POLICY, POLICY], dataset="cifar10", batch_size=batch_size,
                                   embed=self.projection_head, chunks=max(1, batch_size // 16))

    def forward(self, views: list[torch.Tensor], original: torch.Tensor):
        z0, z1 = self.projection_head(self.backbone(torch.cat(views))).chunk(2)
        batch = self.care.derive({"original": original})  # the chunked views, uint8, made on the device
        feats = {f"extras.care.{v}": self.backbone(normalize(batch["extras"]["care"][v], CIFAR_MEAN, CIFAR_STD))
                 for v in ("view1", "view2")}
        return z0, z1, self.care(batch, feats)["loss"]


def cifar10(transform: ParamViews) -> torch.utils.data.Dataset:
    return torchvision.datasets.CIFAR10("datasets/cifar10", download=True, transform=transform)


def main(make_dataset=cifar10, epochs: int = 10, batch_size: int = 256, max_steps: int | None = None,
         device: str = "cuda" if torch.cuda.is_available() else "cpu") -> tuple[nn.Module, list[float]]:
    model = SimCLRCARE(batch_size).to(device)
    transform = ParamViews([POLICY, POLICY], CIFAR_MEAN, CIFAR_STD, original=True, original_levels=True)
    dataloader = DataLoader(make_dataset(transform), batch_size=batch_size, shuffle=True, drop_last=True)
    criterion = NTXentLoss(temperature=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.06)
    losses: list[float] = []
    for epoch in range(epochs):
        for (views, _, original), _ in dataloader:
            z0, z1, care_loss = model([v.to(device) for v in views], original.to(device))
            loss = criterion(z0, z1) + model.care.weight * care_loss
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
