"""The pretraining optimiser and learning-rate schedule, from the `optimizer` and `scheduler` configs."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from lightly.models.utils import get_weight_decay_parameters
from lightly.utils.lars import LARS
from lightly.utils.scheduler import CosineWarmupScheduler
from omegaconf import DictConfig
from torch import nn

from solo_equimod.config.choices import OPTIMIZERS, SCHEDULERS

# SGD-like optimisers default to momentum 0.9; Adam keeps L2 decay in the gradient (CARE's CIFAR setting, SIE main.py)
OPTIMIZER_CLASSES: dict[str, tuple[Callable[..., torch.optim.Optimizer], dict[str, Any]]] = {
    "lars": (LARS, {"momentum": 0.9}),
    "sgd": (torch.optim.SGD, {"momentum": 0.9}),
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
}


def build_optimizer(opt_cfg: DictConfig, learnable: list[nn.Module], classifier: nn.Module) -> torch.optim.Optimizer:
    """Three parameter groups: weights with decay, biases and norms without (nor LARS adaptation),
    and the online classifier at its own learning rate."""
    if opt_cfg.name not in OPTIMIZER_CLASSES:
        raise ValueError(f"optimizer.name={opt_cfg.name!r} is unknown; valid: {OPTIMIZERS}")
    decay, no_decay = get_weight_decay_parameters(learnable)
    groups = [
        {"name": "decay", "params": decay, "weight_decay": float(opt_cfg.weight_decay)},
        {"name": "no_decay", "params": no_decay, "weight_decay": 0.0},
        {"name": "classifier", "params": list(classifier.parameters()), "weight_decay": 0.0,
         "lr": float(opt_cfg.classifier_lr)},
    ]
    cls, defaults = OPTIMIZER_CLASSES[opt_cfg.name]
    return cls(groups, lr=float(opt_cfg.lr), **{**defaults, **dict(opt_cfg.get("kwargs") or {})})


def build_scheduler(sched_cfg: DictConfig, optimizer: torch.optim.Optimizer, total_steps: int,
                    max_epochs: int) -> dict[str, Any] | None:
    """Linear warm-up for `warmup_epochs`, then cosine to 0, stepped every batch; None for `none`."""
    if sched_cfg.name == "none":
        return None
    if sched_cfg.name != "warmup_cosine":
        raise ValueError(f"scheduler.name={sched_cfg.name!r} is unknown; valid: {SCHEDULERS}")
    steps_per_epoch = max(1, math.ceil(total_steps / max(1, max_epochs)))
    warmup_steps = min(int(float(sched_cfg.warmup_epochs) * steps_per_epoch), total_steps)
    scheduler = CosineWarmupScheduler(optimizer, warmup_epochs=warmup_steps, max_epochs=total_steps, end_value=0.0)
    return {"scheduler": scheduler, "interval": "step"}
