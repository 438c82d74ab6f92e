"""SIE (Garrido, Najman & LeCun, ICML 2023) on the 3D factor bench, in plain PyTorch.

The factor bench renders small 3D objects under known rotations, offline (`solo_equimod.data.
factors3d`, 3DIEBench's layout). A sample is two views of one object and the group element taking
view 1 to view 2 (the relative rotation's quaternion). The backbone's features split into an
invariant and an equivariant part; a hypernetwork maps the group element to the linear map that
predicts view 2's equivariant embedding from view 1's (SIE src/models.py).

    python examples/pytorch/sie_factors3d.py
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader

from solo_equimod.blocks import HypernetPredictor, SIELoss, sie_projector
from solo_equimod.data.factors3d import Factors3D
from solo_equimod.data.views3d import ViewPairs, group_spec

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
INV_DIM = EQUI_DIM = 256  # SIE README: --equi 256 of a ResNet-18's 512 features
MLP = [1024, 1024, 1024]  # SIE's 2048-2048-2048, split between the parts by their widths


class SIE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        resnet = torchvision.models.resnet18()
        self.backbone = nn.Sequential(*list(resnet.children())[:-1], nn.Flatten())
        self.projector_inv = sie_projector(INV_DIM, MLP)
        self.projector_equi = sie_projector(EQUI_DIM, MLP)
        self.predictor = HypernetPredictor(len(group_spec("rot").names), MLP[-1])

    def forward(self, views: list[torch.Tensor], group_element: torch.Tensor):
        h = [self.backbone(v) for v in views]  # one call per view, as SIE
        inv = tuple(self.projector_inv(x[:, :INV_DIM]) for x in h)
        eq = tuple(self.projector_equi(x[:, INV_DIM:]) for x in h)
        return inv, eq, self.predictor(eq[0], group_element)


def factor_bench(objects: int | None = None) -> torch.utils.data.Dataset:
    return ViewPairs(Factors3D("train", objects=objects), group_spec("rot"), 32, MEAN, STD)


def main(make_dataset=factor_bench, epochs: int = 10, batch_size: int = 256, max_steps: int | None = None,
         device: str = "cuda" if torch.cuda.is_available() else "cpu") -> tuple[nn.Module, list[float]]:
    model = SIE().to(device)
    dataloader = DataLoader(make_dataset(), batch_size=batch_size, shuffle=True, drop_last=True)
    criterion = SIELoss()  # sim 10, std 10, cov 1, equi_factor 0.45 (SIE README)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses: list[float] = []
    for epoch in range(epochs):
        for batch in dataloader:
            views = [v.to(device) for v in batch["views"]]
            inv, eq, pred = model(views, batch["params"][1].to(device))  # params[1]: view 1 -> view 2
            loss = criterion(inv, eq, pred)["loss"]
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
