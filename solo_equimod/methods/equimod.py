"""EquiMod (Devillers & Lefort, ICLR 2023): the equivariance module and its composition with
any invariance method.

`EquiModule` holds the parts of Sec. 2.2-2.3: the equivariance projection head g', the learned
embedding of the augmentation parameters (Appendix A.1) and the predictor u. `with_equimod(Base)`
returns a subclass of an invariance method whose loss is L = L_inv + lambda * L_EquiMod (Sec. 2.2);
the base method knows nothing about it.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from lightly.models.modules.heads import ProjectionHead
from torch import nn

from solo_equimod.augment.policy import layout_for, policies_from_config
from solo_equimod.losses.equimod import VARIANTS, equimod_loss
from solo_equimod.methods.base import BaseMethod

EQUIMOD_DEFAULTS: dict[str, Any] = {
    "proj_hidden_dim": 2048,  # Sec. 2.3: 3 FC layers, hidden 2048
    "proj_output_dim": 128,  # Sec. 3.1: equivariant latent space of 128 dimensions
    "param_embed_dim": 128,  # Sec. 2.3 / A.1: perceptron to a 128-d latent space
    "temperature": 0.2,  # Sec. 3.1: tau' = 0.2
    "lamb": 1.0,  # Sec. 3.1: lambda fixed to 1
    "loss_variant": "paper",  # Eq. 4; "official": the official code's 4N-row NT-Xent
    "param_stats_samples": 10000,  # A.1: mean/std "computed over many examples"
    "param_stats_seed": 0,
}


class ParamNormalizer(nn.Module):
    """Component-wise standardisation of raw Appendix A.1 vectors; the statistics are buffers,
    so every checkpoint carries the normalisation its predictor was trained with."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, samples: torch.Tensor) -> None:
        if samples.ndim != 2 or samples.shape[1] != self.mean.numel():
            raise ValueError(f"parameter samples must be (n, {self.mean.numel()}), got {tuple(samples.shape)}")
        std = samples.std(dim=0)
        self.mean.copy_(samples.mean(dim=0))
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))  # constant components pass through

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        return (params - self.mean) / self.std


def equivariance_head(input_dim: int, hidden_dim: int, output_dim: int) -> ProjectionHead:
    """g' (Sec. 2.3): 3 FC layers; BN + ReLU after the first two, BN only after the last."""
    return ProjectionHead([
        (input_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
        (hidden_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
        (hidden_dim, output_dim, nn.BatchNorm1d(output_dim), None),
    ])


class EquiModule(nn.Module):
    """g', the augmentation encoder and the predictor u of Sec. 2.2-2.3."""

    def __init__(self, features_dim: int, param_dim: int, proj_hidden_dim: int = 2048, proj_output_dim: int = 128,
                 param_embed_dim: int = 128) -> None:
        super().__init__()
        self.projector = equivariance_head(features_dim, proj_hidden_dim, proj_output_dim)
        self.param_normalizer = ParamNormalizer(param_dim)
        self.param_encoder = nn.Linear(param_dim, param_embed_dim)  # "a perceptron" to 128-d (A.1)
        # u: one FC followed by a BN on concat[z'_o, t_emb] (Sec. 2.3)
        self.predictor = ProjectionHead([
            (proj_output_dim + param_embed_dim, proj_output_dim, nn.BatchNorm1d(proj_output_dim), None),
        ])

    def predict(self, z_original: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """zhat' = u(z'_o, t): the original's embedding moved by the augmentation with raw parameters `params`."""
        t_emb = self.param_encoder(self.param_normalizer(params))
        return self.predictor(torch.cat([z_original, t_emb], dim=1))

    def forward(self, h_original: torch.Tensor, h_views: Sequence[torch.Tensor],
                params: Sequence[torch.Tensor]) -> dict[str, Any]:
        z_original = self.projector(h_original)
        z_views = [self.projector(h) for h in h_views]
        z_preds = [self.predict(z_original, p) for p in params]
        return {"z_original": z_original, "z_views": z_views, "z_preds": z_preds}


def with_equimod(base: type[BaseMethod]) -> type[BaseMethod]:
    """`base` + EquiMod: the original image joins the backbone batch, L = L_inv + lambda * L_EquiMod."""

    class EquiModMethod(base):  # type: ignore[valid-type, misc]
        uses_original = True
        KWARGS_DEFAULTS = {**base.KWARGS_DEFAULTS, "equimod": {}}

        def __init__(self, cfg: Any) -> None:
            super().__init__(cfg)
            kwargs = {**EQUIMOD_DEFAULTS, **self.kwargs["equimod"]}
            unknown = set(kwargs) - set(EQUIMOD_DEFAULTS)
            if unknown:
                raise KeyError(f"unknown method_kwargs.equimod key(s) {sorted(unknown)}; valid: {sorted(EQUIMOD_DEFAULTS)}")
            if kwargs["loss_variant"] not in VARIANTS:
                raise ValueError(f"method_kwargs.equimod.loss_variant={kwargs['loss_variant']!r}; valid: {VARIANTS}")
            self.equimod_kwargs = kwargs
            self.param_layout = layout_for(policies_from_config(self.cfg.augmentations))
            self.equimod = EquiModule(self.features_dim, self.param_layout.dim, kwargs["proj_hidden_dim"],
                                      kwargs["proj_output_dim"], kwargs["param_embed_dim"])

        @property
        def learnable_params(self) -> list[nn.Module]:
            return super().learnable_params + [self.equimod]

        def ssl_step(self, views: list[torch.Tensor], params: list[torch.Tensor],
                     original: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
            feats = self.encode([*views, original])
            view_feats, original_feats = feats[:-1], feats[-1]
            out = self.invariance_step(view_feats, views)
            eq = self.equimod(original_feats, view_feats, params)
            eq_loss = equimod_loss(eq["z_views"], eq["z_preds"], self.equimod_kwargs["temperature"],
                                   self.equimod_kwargs["loss_variant"], self.gather_distributed)
            out["invariance_loss"] = out["loss"]
            out["equimod_loss"] = eq_loss
            out["loss"] = out["loss"] + self.equimod_kwargs["lamb"] * eq_loss
            return out, view_feats

    EquiModMethod.__name__ = EquiModMethod.__qualname__ = f"{base.__name__}EquiMod"
    return EquiModMethod
