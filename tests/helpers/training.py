"""Train a method on one fixed batch: the shared reference of the methods' and objectives' tests."""

from __future__ import annotations

import torch

from solo_equimod.augment import layout_for, policies_from_config
from solo_equimod.data.dataset_info import DATASET_INFO


def fixed_batch(cfg, n=16, levels: bool = True) -> dict:
    """Seeded inputs of every kind; the original as uint8 levels (as loaders deliver it) that normalise to
    about N(0, 1) per channel, like the views and real images (`levels=False`: that N(0, 1) draw itself, an
    original already normalised, which the batch stage passes through)."""
    g = torch.Generator().manual_seed(0)
    dim = layout_for(policies_from_config(cfg.augmentations)).dim
    info = DATASET_INFO[cfg.data.dataset]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (info.mean, info.std))
    views = [torch.randn(n, 3, 32, 32, generator=g) for _ in range(2)]
    params = [torch.randn(n, dim, generator=g) for _ in range(2)]
    original = torch.randn(n, 3, 32, 32, generator=g)
    if levels:
        original = ((mean + std * original) * 255).round().clamp(0, 255).to(torch.uint8)
    return {"index": torch.arange(n), "views": views, "params": params, "image_size": torch.full((n, 2), 32),
            "original": original, "target": torch.randint(0, 10, (n,), generator=g), "extras": {}}


def train_on_fixed_batch(model, batch, steps: int = 30) -> list[dict[str, float]]:
    """Every logged term of `steps` Adam steps of `ssl_step` on one batch."""
    opt = torch.optim.Adam([p for m in model.learnable_params for p in m.parameters()], lr=1e-3)
    losses = []
    for _ in range(steps):
        out, _ = model.ssl_step(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        for online, target in getattr(model, "momentum_pairs", []):
            target.load_state_dict(online.state_dict())  # tau = 0: BYOL's target follows the online net
        losses.append({k: float(v) for k, v in out.items()})
    return losses
