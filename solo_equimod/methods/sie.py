"""SIE (Garrido, Najman & LeCun, ICML 2023; facebookresearch/SIE src/models.py `SIE`): the backbone's
features split into an invariant part (the first dims) and an equivariant part (the last `equi_dim`),
one projector each, and a hypernetwork mapping the group element g (data.group: the relative rotation,
+ colour deltas for rotcolor) to a linear map that predicts view 2's equivariant embedding from view 1's;
loss `losses/sie.py`. `equi_dim` = the backbone's width is the equivariant-only variant (SIEOnlyEqui)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from omegaconf import DictConfig

from solo_equimod.config.settings import setting
from solo_equimod.data.batch import Batch
from solo_equimod.data.param_spec import param_spec
from solo_equimod.errors import ConfigError
from solo_equimod.head_batching import HEAD_BATCHES, apply_heads
from solo_equimod.losses.sie import sie_loss
from solo_equimod.methods.base import BaseMethod, MethodSettings
from solo_equimod.methods.sie_heads import HypernetPredictor, sie_projector


@dataclass
class SIESettings(MethodSettings):
    head_batches: str = setting("per_view", "per_view: each view projected in its own call; joint: both in one",
                                source="SIE src/models.py", choices=HEAD_BATCHES)
    equi_dim: int = setting(256, "width of the equivariant part (the last dims of the backbone features; the "
                            "backbone's width: equivariant only)", source="SIE README: --equi 256", ge=1)
    mlp: list[int] = setting([2048, 2048, 2048], "projector widths, split between the parts by their widths",
                             source="SIE README: --mlp 2048-2048-2048")
    sim_coeff: float = setting(10.0, "weight of the invariance term", source="SIE README: --sim-coeff 10", ge=0)
    std_coeff: float = setting(10.0, "weight of the variance term", source="SIE README: --std-coeff 10", ge=0)
    cov_coeff: float = setting(1.0, "weight of the covariance term", source="SIE README: --cov-coeff 1", ge=0)
    equi_factor: float = setting(0.45, "weight of the equivariant part's terms",
                                 source="SIE README: --equi-factor 0.45 (main.py's own default: 4.5)", ge=0)
    pred_std_loss: bool = setting(True, "the prediction's variance term (false: SIENoVar)", source="SIE src/models.py")

    def check(self, cfg: DictConfig) -> None:
        if not self.mlp or min(self.mlp) < 1:
            raise ConfigError(f"method_kwargs.mlp={list(self.mlp)} is invalid: must be a non-empty list of positive "
                              f"widths, e.g. [2048, 2048, 2048]")
        if param_spec(cfg).relative_to != "first_view":
            raise ConfigError(f"method=sie needs view pairs with group elements: data.dataset 3diebench or factors3d "
                              f"(got data.dataset={cfg.data.dataset!r})")


class SIE(BaseMethod):
    SETTINGS: ClassVar[type[MethodSettings]] = SIESettings

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k, width, spec = self.kwargs, self.features_dim, param_spec(self.cfg)
        if k.equi_dim > width:  # the backbone's width is known once it is built
            raise ConfigError(f"method_kwargs.equi_dim={k.equi_dim} is invalid: must be in 1..{width}, the width of "
                              f"backbone.name={cfg.backbone.name!r}'s features")
        self.inv_dim = width - k.equi_dim
        part = lambda d: [round(m * d / width) for m in k.mlp]  # noqa: E731  (main.py: np.round(mlp * ratio))
        self.projector_inv = sie_projector(self.inv_dim, part(self.inv_dim)) if self.inv_dim else None
        self.projector_equi = sie_projector(k.equi_dim, part(k.equi_dim))
        self.predictor = HypernetPredictor(spec.dim, part(k.equi_dim)[-1])

    @property
    def learnable_params(self) -> list[torch.nn.Module]:
        heads = [m for m in (self.projector_inv, self.projector_equi, self.predictor) if m is not None]
        return super().learnable_params + heads

    def representation_parts(self) -> dict[str, slice]:
        parts = {"equivariant": slice(self.inv_dim, None), "whole": slice(None)}
        return {"invariant": slice(0, self.inv_dim), **parts} if self.inv_dim else parts

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        return self.projector_equi(h[:, self.inv_dim:])

    def predict(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return self.predictor(z, g)

    def method_loss(self, view_feats: list[torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        k, mode = self.kwargs, self.kwargs.head_batches
        inv = apply_heads(self.projector_inv, mode, [h[:, :self.inv_dim] for h in view_feats]) if self.inv_dim else None
        eq = apply_heads(self.embed, mode, view_feats)
        return sie_loss(inv, eq, self.predict(eq[0], batch["params"][1]), k.sim_coeff, k.std_coeff,
                        k.cov_coeff, k.equi_factor, k.pred_std_loss, self.gather_distributed)
