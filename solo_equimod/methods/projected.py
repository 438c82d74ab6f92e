"""The shared step of SimCLR, Barlow Twins and VICReg: one projector on each view's features and a
loss on the pair of projections."""

from __future__ import annotations

import torch
from torch import nn

from solo_equimod.data.batch import Batch
from solo_equimod.head_batching import apply_heads
from solo_equimod.methods.base import BaseMethod


class TrainsProjector:
    """Mixin for a method with a trained `projector`: it is learnable and is the embedding that
    objectives such as CARE read (`embed`); it is built with `conditioned` and reads `head_inputs`."""

    CONDITIONED_HEADS = True
    projector: nn.Module

    @property
    def learnable_params(self) -> list[nn.Module]:
        return super().learnable_params + [self.projector]  # type: ignore[misc]

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        return self.projector(h)


class ProjectedPairMethod(TrainsProjector, BaseMethod):
    """A projector on each view's features and a loss on the pair of projections (SimCLR,
    Barlow Twins, VICReg); subclasses set `self.projector` and `self.criterion`."""

    criterion: nn.Module

    def method_loss(self, view_feats: list[torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        z1, z2 = apply_heads(self.projector, self.kwargs.head_batches, self.head_inputs(view_feats, batch))
        return {"loss": self.criterion(z1, z2)}
