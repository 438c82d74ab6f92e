"""STL (Yu et al., NeurIPS 2024, arXiv 2501.08712; official code jaemyung-u/stl) as an objective: a
transformation representation learned from pairs of images that share one draw of the augmentations.

The step's views are aligned pairs (`derive`, from the uint8 originals; the method's batch stage
normalises them): rows (2i, 2i + 1) of the batch are two images A, B
whose view k shares one draw of the `shared` augmentations (crop, colour jitter, grayscale: dataset.py
`aligned_transform`), the others (flip, blur) drawn per image (`invariant_transform`). The pairs are made
from each process's own rows, so they never straddle processes (the official index tensors assume the
global batch on every process). With y1, y2 the backbone features of the two views, g the transformation
network and H the hypernetwork (model.py `STL.forward`):

    t12 = g([y1; y2]), t21 = g([y2; y1])                  (t: the transformation between the views)
    y_pred1 = H(t21[p]) y2, y_pred2 = H(t12[p]) y1        (p: the partner row, 2i <-> 2i + 1)
    L_equi  = NCE([P_e(y1); P_e(y2)], [P_e(y_pred1); P_e(y_pred2)])
    L_trans = NCE(P_t([t12[A]; t21[A]]), P_t([t12[B]; t21[B]]))   (A: even rows, B: odd rows)

NCE is SimCLR's NT-Xent at `temperature`. The invariance term L_inv = NCE(P_i(y1), P_i(y2)) is the
method's own loss (SimCLR at tau 0.2 with the 512-512-128 head), so the total is
L_inv + weight * (equi_weight * L_equi + trans_weight * L_trans). As the official code, every head
normalises each input in a call of its own (t12 and t21, y1 and y2, y_pred1 and y_pred2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from lightly.loss import NTXentLoss
from omegaconf import DictConfig, OmegaConf
from torch import nn

from solo_equimod.augment.batched_applier import apply_batch
from solo_equimod.augment.params import AUGMENTATION_FIELDS
from solo_equimod.augment.policy import layout_for, policies_from_config
from solo_equimod.augment.sampler import sample_views
from solo_equimod.config.settings import setting
from solo_equimod.data.batch import Batch
from solo_equimod.errors import ConfigError
from solo_equimod.objectives.base import Features, Objective, ObjectiveContext, ObjectiveSettings


@dataclass
class STLSettings(ObjectiveSettings):
    weight: float = setting(1.0, "weight of STL's loss equi_weight * L_equi + trans_weight * L_trans (L_inv is the "
                            "method's own)", source="main.py (the terms enter at --equi, --trans)", ge=0)
    equi_weight: float = setting(1.0, "weight of the equivariance term L_equi", source="main.py --equi 1.0", ge=0)
    trans_weight: float = setting(0.1, "weight of the transformation term L_trans", source="main.py --trans 0.1", ge=0)
    temperature: float = setting(0.2, "tau of the InfoNCE of L_equi and L_trans", source="main.py --temperature 0.2",
                                 gt=0)
    proj_hidden_dim: int = setting(512, "hidden width of the equivariance projector P_e", source="main.py --projector "
                                   "512-128", ge=1)
    proj_output_dim: int = setting(128, "output width of P_e", source="main.py --projector 512-128", ge=1)
    trans_hidden_dim: int = setting(128, "hidden width of the transformation network g on [y; y']",
                                    source="main.py --trans-backbone 128-128", ge=1)
    trans_dim: int = setting(128, "width of the transformation representation t (the hypernetwork's input)",
                             source="main.py --trans-backbone 128-128", ge=1)
    trans_proj_hidden_dim: int = setting(128, "hidden width of the transformation projector P_t",
                                         source="main.py --trans-projector 128-128", ge=1)
    trans_proj_output_dim: int = setting(128, "output width of P_t", source="main.py --trans-projector 128-128",
                                         ge=1)
    shared: list[str] = setting(["crop", "jitter", "gray"], "augmentations the two images of a pair share one draw "
                                "of; the others are drawn per image", source="dataset.py build_transforms")

    def check(self, cfg: DictConfig) -> None:
        """Pairs need an even per-process batch; `shared` names augmentations, each once."""
        unknown = [name for name in self.shared if name not in AUGMENTATION_FIELDS]
        if unknown or len(set(self.shared)) != len(self.shared):
            raise ConfigError(f"objectives.stl.shared={list(self.shared)} is invalid: must name each of at most once "
                              f"{', '.join(AUGMENTATION_FIELDS)}")
        if cfg.optimizer.batch_size % 2:
            raise ConfigError(f"objectives.stl: optimizer.batch_size={cfg.optimizer.batch_size} is odd; STL's aligned "
                              f"pairs need an even number of images per process (e.g. {cfg.optimizer.batch_size + 1})")


def mlp(sizes: list[int]) -> nn.Sequential:
    """[Linear -> BN -> ReLU] per hidden width, then a Linear; no Linear has a bias (model.py `load_mlp`).
    lightly's ProjectionHead gives a last layer without BN a bias, hence this."""
    layers: list[nn.Module] = []
    for d_in, d_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1], bias=False))


def partner_rows(n: int, device: torch.device | None = None) -> torch.Tensor:
    """The other image of each row's pair: 2i <-> 2i + 1 (model.py `shifted_idxs`), for this process's n rows."""
    return torch.arange(n, device=device) ^ 1


class HyperLinear(nn.Module):
    """y' = W(t) y with W(t) = reshape(H t, (d, d)) and H a Linear(trans_dim, d * d) without bias (model.py
    `EquiTrans`): d * d * trans_dim weights, 33.5 M for a ResNet-18's d = 512 and t of 128."""

    def __init__(self, features_dim: int, trans_dim: int) -> None:
        super().__init__()
        self.features_dim = features_dim
        self.hypernet = nn.Linear(trans_dim, features_dim * features_dim, bias=False)

    def forward(self, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        weights = self.hypernet(t).view(-1, self.features_dim, self.features_dim)  # (B, out, in)
        return torch.bmm(weights, y[:, :, None])[:, :, 0]


class STL(Objective):
    SETTINGS: ClassVar[type[ObjectiveSettings]] = STLSettings
    inputs: ClassVar[tuple[str, ...]] = ("original",)
    makes: ClassVar[tuple[str, ...]] = ("views",)

    def __init__(self, settings: STLSettings, context: ObjectiveContext) -> None:
        super().__init__(settings, context)
        s, cfg, dim = self.settings, context.cfg, context.features_dim
        self.policies = policies_from_config(OmegaConf.to_container(cfg.augmentations))
        self.layout = layout_for(self.policies)
        self.trans_net = mlp([2 * dim, s.trans_hidden_dim, s.trans_dim])
        self.transform = HyperLinear(dim, s.trans_dim)
        self.equi_projector = mlp([dim, s.proj_hidden_dim, s.proj_output_dim])
        self.trans_projector = mlp([s.trans_dim, s.trans_proj_hidden_dim, s.trans_proj_output_dim])
        self.criterion = NTXentLoss(temperature=s.temperature, gather_distributed=context.gather_distributed)

    def derive(self, batch: Batch) -> Batch:
        """{"views", "params"}: uint8 aligned pairs from the batch's originals, rows 2i and 2i + 1 sharing each
        view's draw of `shared`, and their raw Appendix A.1 vectors."""
        images = batch["original"]
        n, _, height, width = images.shape
        if n % 2:
            raise ValueError(f"STL's aligned pairs need an even number of rows, the batch has {n}")
        pairs = torch.arange(n) // 2
        heights, widths = torch.full((n,), height), torch.full((n,), width)
        views, params = [], []
        for policy in self.policies:
            drawn = sample_views(policy, heights, widths, groups=pairs, shared=self.settings.shared)
            views.append(apply_batch(images, drawn, policy))
            params.append(self.layout.encode_batch(drawn).to(images.device))
        return {"views": views, "params": params}

    def transformation(self, y_from: torch.Tensor, y_to: torch.Tensor) -> torch.Tensor:
        """t = g([y_from; y_to]): the representation of the transformation taking the first view to the second."""
        return self.trans_net(torch.cat([y_from, y_to], dim=1))

    def forward(self, batch: Batch, feats: Features) -> dict[str, torch.Tensor]:
        y1, y2 = feats["views"][:2]
        t12, t21 = self.transformation(y1, y2), self.transformation(y2, y1)
        partner = partner_rows(y1.shape[0], y1.device)
        y_pred1, y_pred2 = self.transform(y2, t21[partner]), self.transform(y1, t12[partner])
        equi = self.criterion(torch.cat([self.equi_projector(y1), self.equi_projector(y2)]),
                              torch.cat([self.equi_projector(y_pred1), self.equi_projector(y_pred2)]))
        trans = self.criterion(self.trans_projector(torch.cat([t12[0::2], t21[0::2]])),
                               self.trans_projector(torch.cat([t12[1::2], t21[1::2]])))
        s = self.settings
        return {"loss": s.equi_weight * equi + s.trans_weight * trans, "equi": equi, "trans": trans}

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        """The equivariance measures' latent space: P_e(h)."""
        return self.equi_projector(h)

    def predict_from_example(self, h_original: torch.Tensor, h_example_original: torch.Tensor,
                             h_example_view: torch.Tensor) -> torch.Tensor:
        """P_e(H(t) h) with t = g([h_example_original; h_example_view]): the view of each original predicted
        with the transformation read off another image that underwent the same draw (as the partner in training)."""
        t = self.transformation(h_example_original, h_example_view)
        return self.equi_projector(self.transform(h_original, t))
