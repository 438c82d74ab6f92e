"""Speed settings of a pretraining run: `compile` (torch.compile of the networks) and `channels_last`.

`compile` compiles each network of a method in place (`nn.Module.compile`): the backbone, the
method's heads and momentum copies, and every objective's heads. Compiling in place keeps each
module's `state_dict` keys as they are, so a checkpoint of a compiled run loads into an uncompiled
model and back (no `_orig_mod.` prefixes), and resuming, DDP and `load_method` see the same modules.
The losses, the objectives' glue code (gathers across processes, `precision.float32_region`) and the
online classifier stay eager: they are cheap, and a traced all-gather is where torch.compile and DDP
disagree most. Shapes are `dynamic=None` (Dynamo's automatic dynamic shapes): the backbone sees
several batch sizes per step (the views together, the original, extras) and a smaller last batch,
so the first new size marks the batch dimension dynamic and each network compiles a bounded number
of times (see tests/run/test_compile.py), never once per step.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from solo_equimod.objectives.base import Objective


def networks(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The parameterised networks below `module` that `compile` compiles, by qualified name: every
    child holding parameters, found through ModuleDicts, ModuleLists and objectives (containers whose
    own code is loss glue), except the online classifier (one linear layer on detached features:
    a compile costs more than it saves)."""
    found = []
    for name, child in module.named_children():
        qualified = f"{prefix}{name}"
        if isinstance(child, (nn.ModuleDict, nn.ModuleList, Objective)):
            found += networks(child, f"{qualified}.")
        elif qualified != "online_classifier" and next(child.parameters(), None) is not None:
            found.append((qualified, child))
    return found


def _to_channels_last(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: a 4-d image batch in channels-last memory order (NHWC), other inputs as they are."""
    x = args[0]
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        return (x.contiguous(memory_format=torch.channels_last), *args[1:])
    return args


def apply_speed_settings(model: nn.Module, cfg: DictConfig) -> nn.Module:
    """`model` (a method) with `cfg.channels_last` and `cfg.compile` applied, in place.

    channels_last stores the 4-d weights NHWC and hands the backbone its images NHWC (cuDNN's and
    oneDNN's fast convolution layout); the values computed are the same up to summation order."""
    if cfg.get("channels_last", False):
        model.to(memory_format=torch.channels_last)
        model.backbone.register_forward_pre_hook(_to_channels_last)
    if cfg.get("compile", False):
        for _, net in networks(model):
            net.compile(dynamic=None)
    return model
