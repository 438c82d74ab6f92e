"""The SIE loss (Garrido et al., ICML 2023, Sec. 4; facebookresearch/SIE src/models.py:358-426).

For the invariant embeddings (inv_1, inv_2), the equivariant ones (eq_1, eq_2) and the prediction
pred = predictor(eq_1, g) of eq_2:

    sim * MSE(inv_1, inv_2) + equi_factor * sim * MSE(pred, eq_2)
    + std * [v(x) / 2 + v(y) / 2] + std * v(pred) / 2 + cov * [c(x) + c(y)]

with x = [inv_1, eq_1], y = [inv_2, eq_2] (the regulariser sees both parts together, so
information shared by the parts is decorrelated too), gathered over processes; v and c are lightly's
VICReg variance (unbiased, 1e-4 under the square root) and covariance (off-diagonal squares over
(rows - 1), divided by the dimension) terms. Rows are the gathered batch, i.e. the official code's
configured global batch, since incomplete batches are dropped.

The loss computes in float32 with autocast off (`solo_equimod.precision`): under mixed precision the
variance and covariance terms would otherwise keep only 2-3 digits.
"""

from __future__ import annotations

import torch
from lightly.loss.vicreg_loss import covariance_loss, variance_loss
from torch.nn import functional as F

from solo_equimod.losses.gather import gathered_rows
from solo_equimod.precision import float32_region


@float32_region
def sie_loss(inv: tuple[torch.Tensor, torch.Tensor] | None, eq: tuple[torch.Tensor, torch.Tensor], pred: torch.Tensor,
             sim_coeff: float = 10.0, std_coeff: float = 10.0, cov_coeff: float = 1.0, equi_factor: float = 0.45,
             pred_std: bool = True, gather_distributed: bool = False) -> dict[str, torch.Tensor]:
    """{"loss", "inv_loss", "equi_loss", "std_loss", "pred_std_loss", "cov_loss"}; `inv=None` is the
    equivariant-only variant (SIEOnlyEqui), `pred_std=False` the variant without the prediction's variance."""
    zero = pred.new_zeros(())
    inv_loss = F.mse_loss(inv[0], inv[1]) if inv is not None else zero
    equi_loss = F.mse_loss(pred, eq[1])
    x, y = (torch.cat([inv[k], eq[k]], dim=1) if inv is not None else eq[k] for k in (0, 1))
    x, y = gathered_rows(x, gather_distributed), gathered_rows(y, gather_distributed)
    std_loss = variance_loss(x) / 2 + variance_loss(y) / 2
    pred_std_loss = variance_loss(gathered_rows(pred, gather_distributed)) / 2 if pred_std else zero
    cov_loss = covariance_loss(x) + covariance_loss(y)
    loss = (sim_coeff * inv_loss + equi_factor * sim_coeff * equi_loss + std_coeff * std_loss
            + std_coeff * pred_std_loss + cov_coeff * cov_loss)
    return {"loss": loss, "inv_loss": inv_loss, "equi_loss": equi_loss, "std_loss": std_loss,
            "pred_std_loss": pred_std_loss, "cov_loss": cov_loss}
