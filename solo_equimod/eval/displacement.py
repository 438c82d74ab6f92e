"""Equivariance measures of EquiMod on embeddings (paper Sec. 3.2.2, Eq. 5 and 6), and their summary.

For an image x_o and an augmented view x_i = t(x_o), with z'_o = g'(f(x_o)), z'_i = g'(f(x_i)) and
the prediction zhat'_i = u(z'_o, t):

    absolute displacement (Eq. 5):  sim(z'_i, zhat'_i) - sim(z'_i, z'_o)
    relative displacement (Eq. 6):  (1 - sim(z'_i, z'_o)) / (1 - sim(z'_i, zhat'_i))

An invariant model (u the identity) gives 0 and 1; a model that predicts the displacement gives a
positive absolute value and a factor above 1.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def absolute_displacement(z_view: torch.Tensor, z_pred: torch.Tensor, z_orig: torch.Tensor) -> torch.Tensor:
    """Eq. 5 per row: sim(z'_i, zhat'_i) - sim(z'_i, z'_o), sim the cosine similarity."""
    return F.cosine_similarity(z_view, z_pred, dim=1) - F.cosine_similarity(z_view, z_orig, dim=1)


def relative_displacement(z_view: torch.Tensor, z_pred: torch.Tensor, z_orig: torch.Tensor,
                          eps: float = 1e-6) -> torch.Tensor:
    """Eq. 6 per row: (1 - sim(z'_i, z'_o)) / (1 - sim(z'_i, zhat'_i)). Rows whose denominator is
    below `eps` (the prediction equals the view's embedding) are undefined and come back as NaN."""
    num = 1 - F.cosine_similarity(z_view, z_orig, dim=1)
    den = 1 - F.cosine_similarity(z_view, z_pred, dim=1)
    return torch.where(den > eps, num / den.clamp_min(eps), torch.full_like(den, float("nan")))


def summarize(values: torch.Tensor) -> dict[str, float]:
    """Mean, standard deviation, median and quartiles over the defined (non-NaN) values."""
    ok = values[~values.isnan()].double()
    if ok.numel() == 0:
        nan = float("nan")
        return {"mean": nan, "std": nan, "median": nan, "q25": nan, "q75": nan, "n": 0,
                "n_undefined": int(values.numel())}
    q = torch.quantile(ok, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return {"mean": float(ok.mean()), "std": float(ok.std()) if ok.numel() > 1 else 0.0, "median": float(q[1]),
            "q25": float(q[0]), "q75": float(q[2]), "n": int(ok.numel()),
            "n_undefined": int(values.numel() - ok.numel())}
