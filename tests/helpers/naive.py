"""Naive loop re-implementations of VICReg-style statistics, the reference of the SIE and EquiCaps losses."""

from __future__ import annotations

import math

import torch


def naive_std(x: torch.Tensor) -> float:
    n, d = x.shape
    total = 0.0
    for j in range(d):
        mean = sum(float(x[i, j]) for i in range(n)) / n
        var = sum((float(x[i, j]) - mean) ** 2 for i in range(n)) / (n - 1)
        total += max(0.0, 1 - math.sqrt(var + 1e-4))
    return total / d


def naive_cov(x: torch.Tensor, batch: int) -> float:
    n, d = x.shape
    xc = x - x.mean(0)
    total = 0.0
    for a in range(d):
        for b in range(d):
            if a != b:
                total += (sum(float(xc[i, a] * xc[i, b]) for i in range(n)) / (batch - 1)) ** 2
    return total / d
