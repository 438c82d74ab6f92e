"""Rows of every process, for losses whose statistics span the global batch (VICReg-style variance
and covariance, batch means): lightly's gather keeps the gradient to this process's rows."""

from __future__ import annotations

import torch
from lightly.utils import dist


def gathered_rows(x: torch.Tensor, gather_distributed: bool) -> torch.Tensor:
    """`x` of every process concatenated along the rows, or `x` itself on one process or when off."""
    return torch.cat(dist.gather(x)) if gather_distributed and dist.world_size() > 1 else x
