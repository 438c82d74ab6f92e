"""Computations that must not follow the training step's mixed precision.

Under `precision: 16-mixed` Lightning runs the step inside `torch.autocast` (float16 on GPU,
bfloat16 on CPU), which also reaches code called from the step that autocast was never meant for:
the batched augmentation (CARE draws its views inside the step; 0..255 levels and resize weights
need float32, and its per-row updates need one dtype) and our losses, whose Gram-matrix differences
(CARE), logits (EquiMod) and covariances (SIE) lose most of their digits in 8-bit mantissas.
`float32_region` runs such a function in (at least) float32 with autocast off, so its result under mixed
precision equals its result on the same inputs at full precision.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])


def _as_float32(value: Any) -> Any:
    """Half-precision tensors (also inside lists and tuples) as float32; float64 and anything else as is."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() and value.element_size() < 4 else value
    if isinstance(value, (list, tuple)):
        return type(value)(_as_float32(v) for v in value)
    return value


def _first_tensor(values: Any) -> torch.Tensor | None:
    for value in values:
        if isinstance(value, torch.Tensor):
            return value
        if isinstance(value, (list, tuple)):
            found = _first_tensor(value)
            if found is not None:
                return found
    return None


def float32_region(fn: F) -> F:
    """`fn` with its float16 / bfloat16 tensor arguments cast to float32 (float64 kept, as the
    reference tests use) and autocast disabled on the device of its first tensor argument (casts are
    differentiable: gradients flow back in the callers' dtypes)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        first = _first_tensor([*args, *kwargs.values()])
        device_type = first.device.type if first is not None else "cpu"
        with torch.autocast(device_type, enabled=False):
            return fn(*_as_float32(args), **{k: _as_float32(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]
