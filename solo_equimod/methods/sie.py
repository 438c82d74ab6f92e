"""SIE (Garrido, Najman & LeCun, ICML 2023; facebookresearch/SIE src/models.py `SIE`): the backbone's
features split into an invariant part (the first dims) and an equivariant part (the last `equi_dim`),
one projector each, and a hypernetwork mapping the group element g (data.group: the relative rotation,
+ colour deltas for rotcolor) to a linear map that predicts view 2's equivariant embedding from view 1's;
loss `losses/sie.py`. `equi_dim` = the backbone's width is the equivariant-only variant (SIEOnlyEqui)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from omegaconf import DictConfig

from solo_equimod.data.batch import Batch
from solo_equimod.data.param_spec import param_spec
from solo_equimod.heads import apply_heads
from solo_equimod.losses.sie import sie_loss
from solo_equimod.methods.base import BaseMethod
from solo_equimod.methods.sie_heads import HypernetPredictor, sie_projector


class SIE(BaseMethod):
    KWARGS_DEFAULTS: ClassVar[dict[str, Any]] = {
        **BaseMethod.KWARGS_DEFAULTS,
        "head_batches": "per_view",  # src/models.py projects each view in its own call
        "equi_dim": 256,  # README: --equi 256 (last half of ResNet-18's 512)
        "mlp": [2048, 2048, 2048],  # README --mlp 2048-2048-2048, split between the parts by their widths
        "sim_coeff": 10.0, "std_coeff": 10.0, "cov_coeff": 1.0,  # README --sim-coeff 10 --std-coeff 10 --cov-coeff 1
        "equi_factor": 0.45,  # README --equi-factor 0.45 (main.py's own default: 4.5)
        "pred_std_loss": True,  # False: SIENoVar, without the prediction's variance term
    }

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k, width, spec = self.kwargs, self.features_dim, param_spec(self.cfg)
        if not 0 < k["equi_dim"] <= width or spec.relative_to != "first_view":
            raise ValueError(f"method 'sie' needs method_kwargs.equi_dim in 1..{width} (got {k['equi_dim']}) and view "
                             f"pairs with group elements (data.dataset 3diebench or factors3d, got {cfg.data.dataset})")
        self.inv_dim = width - k["equi_dim"]
        part = lambda d: [round(m * d / width) for m in k["mlp"]]  # noqa: E731  (main.py: np.round(mlp * ratio))
        self.projector_inv = sie_projector(self.inv_dim, part(self.inv_dim)) if self.inv_dim else None
        self.projector_equi = sie_projector(k["equi_dim"], part(k["equi_dim"]))
        self.predictor = HypernetPredictor(spec.dim, part(k["equi_dim"])[-1])

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

    def invariance_step(self, view_feats: list[torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        k, mode = self.kwargs, self.kwargs["head_batches"]
        inv = apply_heads(self.projector_inv, mode, [h[:, :self.inv_dim] for h in view_feats]) if self.inv_dim else None
        eq = apply_heads(self.embed, mode, view_feats)
        return sie_loss(inv, eq, self.predict(eq[0], batch["params"][1]), k["sim_coeff"], k["std_coeff"],
                        k["cov_coeff"], k["equi_factor"], k["pred_std_loss"], self.gather_distributed)
