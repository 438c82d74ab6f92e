"""The losses as modules, lightly-style: settings checked in the constructor, tensors in `forward`.

Thin wrappers over the functions of `equimod.py`, `care.py` and `sie.py` (which stay the tested
reference), for users who compose their own training loop (`solo_equimod.blocks`)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from solo_equimod.losses.care import care_loss
from solo_equimod.losses.equimod import VARIANTS, equimod_loss
from solo_equimod.losses.sie import sie_loss


class EquiModLoss(nn.Module):
    """EquiMod's loss (paper Eq. 4; `variant="official"`: the official code's 4N-row NT-Xent) between
    the views' equivariant embeddings z'_i and their predictions zhat'_i = u(z'_o, t_i)."""

    def __init__(self, temperature: float = 0.2, variant: str = "paper", gather_distributed: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"EquiModLoss: temperature={temperature} must be positive (the paper's tau' is 0.2)")
        if variant not in VARIANTS:
            raise ValueError(f"EquiModLoss: variant={variant!r} is unknown; valid: {list(VARIANTS)}")
        self.temperature, self.variant, self.gather_distributed = temperature, variant, gather_distributed

    def forward(self, z_views: Sequence[torch.Tensor], z_preds: Sequence[torch.Tensor]) -> torch.Tensor:
        return equimod_loss(z_views, z_preds, self.temperature, self.variant, self.gather_distributed)  # type: ignore[arg-type]


class CARELoss(nn.Module):
    """CARE's loss: the rows of a chunk share one pair of augmentations; their Gram matrices of the
    (L2-normalised) embeddings of the two views should agree."""

    def __init__(self, chunks: int = 16) -> None:
        super().__init__()
        if chunks < 1:
            raise ValueError(f"CARELoss: chunks={chunks} must be >= 1 (the official CIFAR value is 16)")
        self.chunks = chunks

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return care_loss(z1, z2, self.chunks)


class SIELoss(nn.Module):
    """SIE's loss (Garrido et al. 2023, Sec. 4): invariance + equivariant prediction + VICReg
    variance and covariance; `forward` returns every term, the total under "loss"."""

    def __init__(self, sim_coeff: float = 10.0, std_coeff: float = 10.0, cov_coeff: float = 1.0,
                 equi_factor: float = 0.45, pred_std: bool = True, gather_distributed: bool = False) -> None:
        super().__init__()
        for name, value in (("sim_coeff", sim_coeff), ("std_coeff", std_coeff), ("cov_coeff", cov_coeff),
                            ("equi_factor", equi_factor)):
            if value < 0:
                raise ValueError(f"SIELoss: {name}={value} must be >= 0")
        self.coeffs = (sim_coeff, std_coeff, cov_coeff, equi_factor)
        self.pred_std, self.gather_distributed = pred_std, gather_distributed

    def forward(self, inv: tuple[torch.Tensor, torch.Tensor] | None, eq: tuple[torch.Tensor, torch.Tensor],
                pred: torch.Tensor) -> dict[str, torch.Tensor]:
        return sie_loss(inv, eq, pred, *self.coeffs, pred_std=self.pred_std, gather_distributed=self.gather_distributed)
