"""ESSL (kaotty/Understanding-ESSL, ESSL/equivariant_tasks.py) as a method: no invariance loss, so the
backbone learns only from its objectives, in `scripts/pretrain/cifar/essl.yaml` one
`transform_prediction` task; without objectives it is the official "none" baseline (the probe alone on
a random backbone). The online probe reads the views, which the ESSL configs leave un-augmented."""

from __future__ import annotations

import torch

from solo_equimod.data.batch import Batch
from solo_equimod.methods.base import BaseMethod


class ESSL(BaseMethod):
    def method_loss(self, view_feats: list[torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """No invariance term: a zero loss."""
        return {"loss": view_feats[0].new_zeros(())}
