"""The EquiMod loss (paper Eq. 4) and the variant of the official code.

Notation: for N images, `z_views = [z'_i, z'_j]` are the equivariant embeddings of the two
views (N x D each) and `z_preds = [zhat'_i, zhat'_j]` the predictor's outputs from the original
image's embedding and each view's augmentation.

* ``"paper"`` (default, Eq. 4): every view embedding z'_i is an anchor (the loss is applied to
  (i, j) and (j, i)); its positive is zhat'_i; its negatives are the other view embeddings z'_k of
  the batch except the two views of the same image (k != i and k != j). It is an NT-Xent, i.e. a
  cross-entropy, so the positive also appears in the softmax denominator as in SimCLR's loss
  (Eq. 4 as printed lists only the negatives there; the text calls the loss NT-Xent).
* ``"official"``: the official code's NT-Xent over the 4N rows [z'_i; z'_j; zhat'_i; zhat'_j],
  each row's positive being its partner, and only self-similarity masked, so the other view of
  the same image and all predictions are negatives too. This is lightly's `NTXentLoss`.

With one view (view 2 predicted from view 1 on datasets of renderings), "paper" contrasts z'_2 with
the other images' z'_2 and "official" is NT-Xent over the 2N rows [z'_2; zhat'_2], the SIE
repository's SimCLR+EquiMod baseline (src/models.py SimCLREquiMod).

Both compute in float32 with autocast off (`solo_equimod.precision`): under mixed precision the
logits at temperature 0.2 would otherwise keep only 2-3 digits.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from lightly.loss import NTXentLoss
from lightly.utils import dist

from solo_equimod.precision import float32_region

Variant = Literal["paper", "official"]
VARIANTS: tuple[str, ...] = ("paper", "official")


def _paper_loss(z_views: Sequence[torch.Tensor], z_preds: Sequence[torch.Tensor], temperature: float,
                gather_distributed: bool) -> torch.Tensor:
    n, v = z_views[0].shape[0], len(z_views)
    anchors = F.normalize(torch.cat(list(z_views)), dim=1)  # vN x D, rows [i-views; j-views]
    positives = F.normalize(torch.cat(list(z_preds)), dim=1)
    candidates, offset = anchors, 0
    if gather_distributed and dist.world_size() > 1:
        # negatives from every process, gradients kept (lightly's gather); same layout per rank
        gathered = [torch.cat(parts) for parts in zip(*[dist.gather(F.normalize(z, dim=1)) for z in z_views])]
        candidates, offset = torch.cat(gathered), dist.rank() * v * n
    pos_logit = (anchors * positives).sum(dim=1, keepdim=True) / temperature
    neg_logits = anchors @ candidates.T / temperature
    # mask every view of the anchor's image: columns offset + (r mod N) + k N
    rows = torch.arange(v * n, device=anchors.device)
    same_image = torch.zeros_like(neg_logits, dtype=torch.bool)
    for k in range(v):
        same_image[rows, offset + rows % n + k * n] = True
    neg_logits = neg_logits.masked_fill(same_image, float("-inf"))
    logits = torch.cat([pos_logit, neg_logits], dim=1)
    return F.cross_entropy(logits, torch.zeros(v * n, dtype=torch.long, device=anchors.device))


@float32_region
def equimod_loss(
    z_views: Sequence[torch.Tensor],
    z_preds: Sequence[torch.Tensor],
    temperature: float = 0.2,
    variant: Variant = "paper",
    gather_distributed: bool = False,
) -> torch.Tensor:
    """Mean EquiMod loss over all anchors; `temperature` is the paper's tau' (0.2, Sec. 3.1). One view and
    its prediction (view 2 predicted from view 1, SIE's baselines) or two (both predicted from the original)."""
    if len(z_views) not in (1, 2) or len(z_preds) != len(z_views):
        raise ValueError(f"EquiMod takes 1 or 2 views and as many predictions, got {len(z_views)} and {len(z_preds)}")
    if variant == "paper":
        return _paper_loss(z_views, z_preds, temperature, gather_distributed)
    if variant == "official":
        criterion = NTXentLoss(temperature=temperature, gather_distributed=gather_distributed)
        return criterion(torch.cat(list(z_views)), torch.cat(list(z_preds)))
    raise ValueError(f"method_kwargs.equimod.loss_variant={variant!r} is unknown; valid: {VARIANTS}")
