"""The EquiCaps loss (Konstantinou et al. 2025; AberdeenML/EquiCaps src/models.py EquiCaps_3x3.forward).

For the capsule activations (x_inv, y_inv) and pose matrices (x_pose, y_pose) of views 1 and 2 and the
relative rotation M = R1^-1 R2 (3x3) that takes view 1 to view 2:

    inv_coeff * mean_b sum_k -y_inv,k log x_inv,k                     (cross-entropy, both sides trained)
    + equi_coeff * MSE(P(x_pose M), P(y_pose))                         (P: each 3x3 over its Frobenius norm)
    + std_coeff * [v(x) / 2 + v(y) / 2] + cov_coeff * [c(x) + c(y)]   (x = [x_inv ; P(x_pose M)], y likewise)
    + memax_coeff * sum_{v in x, y} [log K - H(mean_b v_inv)]          (K capsules; H the entropy)

gathered over processes for v, c (lightly's VICReg variance and covariance terms, as the official code's)
and averaged over processes for the batch mean of the activations (its AllReduce).
The loss computes in float32 with autocast off (`solo_equimod.precision`).
"""

from __future__ import annotations

import math

import torch
from lightly.loss.vicreg_loss import covariance_loss, variance_loss
from torch.nn import functional as F

from solo_equimod.losses.gather import gathered_rows
from solo_equimod.precision import float32_region


def _mean_over_processes(x: torch.Tensor, gather_distributed: bool) -> torch.Tensor:
    """The batch mean of every process, averaged (the official AllReduce), with gradients to this one's part."""
    return gathered_rows(x.unsqueeze(0), gather_distributed).mean(0)


def frobenius_normalised(poses: torch.Tensor) -> torch.Tensor:
    """Each (..., 3, 3) pose matrix divided by its Frobenius norm."""
    return poses / poses.norm(dim=(-2, -1), keepdim=True)


def mean_entropy_gap(activations: torch.Tensor, gather_distributed: bool = False) -> torch.Tensor:
    """log K - H(mean over the batch of the (B, K) activations): 0 when the capsules are used evenly."""
    mean = _mean_over_processes(activations.mean(0), gather_distributed)
    return math.log(activations.shape[1]) + (mean * mean.log()).sum()


@float32_region
def equicaps_loss(inv: tuple[torch.Tensor, torch.Tensor], poses: tuple[torch.Tensor, torch.Tensor],
                  rotation: torch.Tensor, inv_coeff: float = 0.1, equi_coeff: float = 5.0, std_coeff: float = 10.0,
                  cov_coeff: float = 1.0, memax_coeff: float = 1.0,
                  gather_distributed: bool = False) -> dict[str, torch.Tensor]:
    """{"loss", "inv_loss", "equi_loss", "std_loss", "cov_loss", "memax_loss"}. `inv`: activations
    (B, K) of both views; `poses`: (B, K, 3, 3) of both views; `rotation`: (B, 3, 3), view 1 to view 2."""
    (x_inv, y_inv), (x_pose, y_pose) = inv, poses
    inv_loss = -(y_inv * x_inv.log()).sum(1).mean()
    x_moved = frobenius_normalised(x_pose @ rotation.unsqueeze(1))
    y_pose = frobenius_normalised(y_pose)
    equi_loss = F.mse_loss(x_moved, y_pose)
    x = gathered_rows(torch.cat([x_inv, x_moved.flatten(1)], 1), gather_distributed)
    y = gathered_rows(torch.cat([y_inv, y_pose.flatten(1)], 1), gather_distributed)
    std_loss = variance_loss(x) / 2 + variance_loss(y) / 2
    cov_loss = covariance_loss(x) + covariance_loss(y)
    memax_loss = mean_entropy_gap(x_inv, gather_distributed) + mean_entropy_gap(y_inv, gather_distributed)
    loss = (inv_coeff * inv_loss + equi_coeff * equi_loss + std_coeff * std_loss + cov_coeff * cov_loss
            + memax_coeff * memax_loss)
    return {"loss": loss, "inv_loss": inv_loss, "equi_loss": equi_loss, "std_loss": std_loss, "cov_loss": cov_loss,
            "memax_loss": memax_loss}
