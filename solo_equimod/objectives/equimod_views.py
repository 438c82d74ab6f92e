"""EquiMod between views, the SIE repository's baseline (Garrido et al., ICLR 2024; src/models.py
`SimCLREquiMod`, `VICRegEquiMod`): for data whose params are group elements taking view 1 to view 2
(3DIEBench, factors3d: `data/param_spec.py`), view 2's embedding is predicted from view 1's,
zhat'_2 = u(g'(f(v_1)), g), against z'_2 = g'(f(v_2)). There is no original image to encode. The
heads, the parameter embedding and the loss are EquiMod's (`objectives/equimod.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from solo_equimod.data.batch import Batch
from solo_equimod.head_batching import apply_heads
from solo_equimod.losses.equimod import equimod_loss
from solo_equimod.objectives.base import Features, ObjectiveSettings
from solo_equimod.objectives.equimod import EquiMod, EquiModSettings


@dataclass
class EquiModViewsSettings(EquiModSettings):
    PARAMS_FROM: ClassVar[str] = "first_view"


class EquiModViews(EquiMod):
    """Predicts view 2's embedding from view 1's and the group element taking view 1 to view 2."""

    SETTINGS: ClassVar[type[ObjectiveSettings]] = EquiModViewsSettings
    PINNED_BEFORE: ClassVar[dict[int, dict[str, Any]]] = {}  # no config saved before version 2 names it
    inputs: ClassVar[tuple[str, ...]] = ()
    encodes: ClassVar[tuple[str, ...]] = ()  # the views only
    LEGACY_NAME: ClassVar[str | None] = None

    def forward(self, batch: Batch, feats: Features) -> dict[str, torch.Tensor]:
        s = self.settings
        z_1, z_2 = apply_heads(self.embed, s.head_batches, feats["views"])
        z_pred = self.predict(z_1, batch["params"][1])
        return {"loss": equimod_loss([z_2], [z_pred], s.temperature, s.loss_variant, self.gather_distributed)}
