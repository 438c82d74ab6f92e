"""SIE's heads (facebookresearch/SIE): the projector of each part and the hypernetwork predictor."""

from __future__ import annotations

import torch
from lightly.models.modules.heads import ProjectionHead
from torch import nn


def sie_projector(input_dim: int, dims: list[int]) -> ProjectionHead:
    """src/models.py Projector: (Linear + BN + ReLU) per hidden layer, then a Linear without bias."""
    sizes = [input_dim, *dims]
    return ProjectionHead([(sizes[i], sizes[i + 1], nn.BatchNorm1d(sizes[i + 1]), nn.ReLU()) for i in range(len(dims) - 1)]
                          + [(sizes[-2], sizes[-1], None, None, False)])


class HypernetPredictor(nn.Module):
    """src/hypernetwork.py ParametrizedNet with the defaults (linear hypernetwork, no bias, no hidden
    layer): g -> W(g), a (dim x dim) matrix, and the prediction W(g) z for each row."""

    def __init__(self, group_dim: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.hypernet = nn.Linear(group_dim, dim * dim, bias=False)

    def forward(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        weights = self.hypernet(g).view(-1, self.dim, self.dim)  # (out, in) per row, as nn.Linear's weight
        return torch.bmm(z.unsqueeze(1), weights.transpose(1, 2)).squeeze(1)
