"""EquiMod (Devillers & Lefort, ICLR 2023) as an objective: the equivariance projection head g',
the learned embedding of the augmentation parameters (Appendix A.1) and the predictor u of
Sec. 2.2-2.3; its loss is Eq. 4 (`losses/equimod.py`), weighted by lambda (`weight`). The views are
predicted from the original image, so the data's params must take the original to each view; for
data whose params take view 1 to view 2 (3DIEBench, factors3d) `objectives.equimod_views` predicts
view 2 from view 1 (`objectives/equimod_views.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from lightly.models.modules.heads import ProjectionHead
from omegaconf import DictConfig
from torch import nn

from solo_equimod.config.settings import setting
from solo_equimod.data.batch import Batch
from solo_equimod.data.param_spec import param_spec
from solo_equimod.errors import ConfigError
from solo_equimod.head_batching import HEAD_BATCHES, apply_heads
from solo_equimod.losses.equimod import VARIANTS, equimod_loss
from solo_equimod.objectives.base import Features, Objective, ObjectiveContext, ObjectiveSettings


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


def equivariance_head(input_dim: int, hidden_dim: int, output_dim: int, last_bn_affine: bool) -> ProjectionHead:
    """g' (Sec. 2.3): 3 FC layers; BN + ReLU after the first two, BN only after the last (without
    affine parameters in the official code, src/model.py `proj_head_eq`)."""
    return ProjectionHead([
        (input_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
        (hidden_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
        (hidden_dim, output_dim, nn.BatchNorm1d(output_dim, affine=last_bn_affine), None),
    ])


def param_encoder(param_dim: int, embed_dim: int, kind: str) -> nn.Module:
    """The learned embedding of the augmentation parameters: the official code's Linear without
    bias + BatchNorm1d (src/model.py `proj_head_t`), or the paper's plain perceptron (A.1)."""
    if kind == "perceptron":
        return nn.Linear(param_dim, embed_dim)
    return nn.Sequential(nn.Linear(param_dim, embed_dim, bias=False), nn.BatchNorm1d(embed_dim))


@dataclass
class EquiModSettings(ObjectiveSettings):
    weight: float = setting(1.0, "lambda of Eq. 4: L = L_inv + lambda * L_EquiMod", source="Sec. 3.1: lambda = 1",
                            ge=0)
    proj_hidden_dim: int = setting(2048, "hidden width of the equivariance head g'", source="Sec. 2.3", ge=1)
    proj_output_dim: int = setting(128, "width of the equivariant latent space", source="Sec. 3.1", ge=1)
    param_embed_dim: int = setting(128, "width of the augmentation parameters' embedding", source="Sec. 2.3, A.1",
                                   ge=1)
    temperature: float = setting(0.2, "tau' of the equivariant NT-Xent", source="Sec. 3.1", gt=0)
    loss_variant: str = setting("paper", "paper: Eq. 4; official: the official code's 4N-row NT-Xent",
                                source="Eq. 4; official src/model.py", choices=VARIANTS)
    param_stats_samples: int = setting(10000, "parameter vectors drawn to estimate their mean and std",
                                       source="A.1: computed over many examples", ge=2)
    param_stats_seed: int = setting(0, "seed of that draw (identical on every process)")
    param_encoder: str = setting("linear_bn", "linear_bn: Linear (no bias) + BN, the official code; perceptron: "
                                 "the paper's wording", source="official src/model.py proj_head_t",
                                 choices=("linear_bn", "perceptron"))
    last_bn_affine: bool = setting(False, "the last BN of g' and of u has affine parameters",
                                   source="official src/model.py (no affine)")
    head_batches: str = setting("joint", "joint: g' on [original; views] in one call, u on all views; per_view: "
                                "one call per input", source="official src/model.py forward", choices=HEAD_BATCHES)

    # where the data's params start from: "original" (EquiMod) or "first_view" (EquiMod between views)
    PARAMS_FROM: ClassVar[str] = "original"
    OTHER: ClassVar[dict[str, str]] = {"original": "equimod", "first_view": "equimod_views"}

    def check(self, cfg: DictConfig) -> None:
        """The data's params must start where this objective predicts from (the original, or view 1)."""
        spec = param_spec(cfg)
        if spec.relative_to != self.PARAMS_FROM:
            raise ConfigError(f"objectives.{self.OTHER[self.PARAMS_FROM]} predicts views from the "
                              f"{self.PARAMS_FROM.replace('_', ' ')}, but the params of data.dataset="
                              f"{cfg.data.dataset!r} take the {spec.relative_to.replace('_', ' ')} to each view; "
                              f"use objectives.{self.OTHER[spec.relative_to]}")


class EquiMod(Objective):
    """Predicts each view's embedding z'_i = g'(f(t_i(x))) from the original's, u(g'(f(x)), t_i)."""

    SETTINGS: ClassVar[type[ObjectiveSettings]] = EquiModSettings
    # what configs saved before config_version 2 meant (they had no such keys)
    PINNED_BEFORE: ClassVar[dict[int, dict[str, Any]]] = {
        2: {"param_encoder": "perceptron", "last_bn_affine": True, "head_batches": "per_view"},
    }
    inputs: ClassVar[tuple[str, ...]] = ("original",)
    encodes: ClassVar[tuple[str, ...]] = ("original",)  # with the views: one backbone call, shared BN (official code)
    LEGACY_NAME: ClassVar[str | None] = "equimod"
    LEGACY_RENAMES: ClassVar[dict[str, str]] = {"lamb": "weight"}

    def __init__(self, settings: EquiModSettings, context: ObjectiveContext) -> None:
        super().__init__(settings, context)
        s = self.settings
        self.param_layout = param_spec(context.cfg)
        self.gather_distributed = context.gather_distributed
        self.projector = equivariance_head(context.features_dim, s.proj_hidden_dim, s.proj_output_dim,
                                           s.last_bn_affine)
        self.param_normalizer = ParamNormalizer(self.param_layout.dim)
        self.param_encoder = param_encoder(self.param_layout.dim, s.param_embed_dim, s.param_encoder)
        # u: one FC followed by a BN on concat[z'_o, t_emb] (Sec. 2.3)
        out_dim = s.proj_output_dim
        self.predictor = ProjectionHead([
            (out_dim + s.param_embed_dim, out_dim, nn.BatchNorm1d(out_dim, affine=s.last_bn_affine), None),
        ])

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        """z' = g'(h)."""
        return self.projector(h)

    def predict(self, z_original: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """zhat' = u(z'_o, t): the original's embedding moved by the augmentation with raw parameters `params`."""
        t_emb = self.param_encoder(self.param_normalizer(params))
        return self.predictor(torch.cat([z_original, t_emb], dim=1))

    def prepare(self, datamodule: Any) -> None:
        """Estimate the parameter mean/std from a seeded sample of the training params (Appendix A.1:
        the augmentation sampler over the dataset's image sizes; or view pairs' group elements),
        identical on every rank."""
        seed, count = self.settings.param_stats_seed, self.settings.param_stats_samples
        self.param_normalizer.fit(datamodule.sample_param_vectors(count, seed))

    def forward(self, batch: Batch, feats: Features) -> dict[str, torch.Tensor]:
        mode, params = self.settings.head_batches, batch["params"]
        # joint: g' on [original; views] (3N rows), encoder and u on all views (2N), as src/model.py forward
        z_original, *z_views = apply_heads(self.embed, mode, [feats["original"], *feats["views"]])
        z_preds = apply_heads(self.predict, mode, [z_original] * len(params), params)
        loss = equimod_loss(z_views, z_preds, self.settings.temperature, self.settings.loss_variant,
                            self.gather_distributed)
        return {"loss": loss}
