"""How heads see several inputs of one step (views, the original): in one call, so that their
BatchNorm layers normalise them together as the official EquiMod code does (src/model.py: g' on
[original; v1; v2], u and the invariance head on [v1; v2]), or one call per input."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

HEAD_BATCHES: tuple[str, ...] = ("joint", "per_view")


def joint(head: Callable[..., torch.Tensor], *inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """`head` applied once to the row-wise concatenation of each argument's tensors, split back per tensor."""
    out = head(*(torch.cat(list(x)) for x in inputs))
    return list(out.split([x.shape[0] for x in inputs[0]]))


def apply_heads(head: Callable[..., torch.Tensor], mode: str, *inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """`head` on every input (`inputs` are parallel lists of tensors): one call if `mode` is "joint", else one per input."""
    if mode == "joint":
        return joint(head, *inputs)
    return [head(*args) for args in zip(*inputs)]
