"""Two-process (gloo) test plumbing: a free port, gradients by name, a plain SSL loss module."""

from __future__ import annotations

import socket

import torch
from torch import nn

from solo_equimod.data.batch import Batch
from solo_equimod.methods import BaseMethod


class SSLLoss(nn.Module):
    """The method's SSL loss as a forward pass, so DDP sees it and averages the gradients."""

    def __init__(self, method: BaseMethod) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.method.ssl_step(batch)[0]["loss"]


def grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
