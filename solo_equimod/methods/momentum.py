"""Momentum (EMA) targets, as BYOL's: copies of chosen modules updated after every optimiser step
with the cosine tau schedule."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from lightly.utils.scheduler import cosine_schedule
from omegaconf import DictConfig
from torch import nn

from solo_equimod.config.settings import setting
from solo_equimod.methods.base import BaseMethod, MethodSettings
from solo_equimod.methods.projected import TrainsProjector


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, tau: float) -> None:
    """target <- tau * target + (1 - tau) * online, floating buffers included (lightly's
    `update_momentum` moves parameters only). The target's BatchNorm runs in train mode, so its
    batch statistics, not these running ones, shape the loss; averaging the buffers too only
    changes the running statistics, which matter when the target network itself is evaluated."""
    for p_t, p_o in zip(target.parameters(), online.parameters()):
        p_t.lerp_(p_o, 1.0 - tau)
    for b_t, b_o in zip(target.buffers(), online.buffers()):
        if b_t.dtype.is_floating_point:
            b_t.lerp_(b_o, 1.0 - tau)
        else:
            b_t.copy_(b_o)


@dataclass
class MomentumSettings(MethodSettings):
    tau_base: float = setting(0.996, "momentum of the target network at the start (cosine schedule to tau_final)",
                              source="BYOL; EquiMod Sec. 3.1.2", ge=0, le=1)
    tau_final: float = setting(1.0, "momentum of the target network at the end", source="BYOL", ge=0, le=1)


class BaseMomentumMethod(BaseMethod):
    """Adds momentum (EMA) copies of chosen modules, with BYOL's cosine tau schedule."""

    SETTINGS: ClassVar[type[MethodSettings]] = MomentumSettings

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        self.momentum_backbone = self._frozen_copy(self.backbone)
        self.tau = self.kwargs.tau_base

    @staticmethod
    def _frozen_copy(module: nn.Module) -> nn.Module:
        target = copy.deepcopy(module)
        for p in target.parameters():
            p.requires_grad = False
        return target

    @property
    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, target) pairs updated after every optimiser step."""
        return [(self.backbone, self.momentum_backbone)]

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # tau follows the global step, so a resumed run continues the same schedule
        step, total = self.trainer.global_step, max(1, int(self.trainer.estimated_stepping_batches))
        self.tau = cosine_schedule(min(step, total), total, self.kwargs.tau_base, self.kwargs.tau_final)
        for online, target in self.momentum_pairs:
            momentum_update(online, target, self.tau)
        self.log("tau", self.tau)


class MomentumProjectedMethod(TrainsProjector, BaseMomentumMethod):
    """A momentum method whose `projector` has a momentum copy `momentum_projector` (BYOL, MoCo-v2)."""

    momentum_projector: nn.Module

    @property
    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return super().momentum_pairs + [(self.projector, self.momentum_projector)]
