"""EquiCaps (Konstantinou et al., 2025, arXiv 2506.09895; AberdeenML/EquiCaps src/models.py
`EquiCaps_3x3`): no projector MLP and no predictor network. A capsule layer on the backbone's pre-pool
feature map (`methods/capsules.py`) gives each view K capsule activations (the invariant part, a
distribution over the capsules) and K 3x3 pose matrices (the equivariant part); view 1's poses times
the known relative rotation R1^-1 R2 must match view 2's. Loss: `losses/equicaps.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from omegaconf import DictConfig

from solo_equimod.config.settings import setting
from solo_equimod.data.batch import Batch
from solo_equimod.data.param_spec import param_spec
from solo_equimod.data.views3d import QUAT_NAMES
from solo_equimod.errors import ConfigError
from solo_equimod.head_batching import HEAD_BATCHES, apply_heads
from solo_equimod.losses.equicaps import equicaps_loss, frobenius_normalised
from solo_equimod.methods.base import BaseMethod, MethodSettings
from solo_equimod.methods.capsules import CapsuleProjector, quat_matrix

SOURCE = "EquiCaps README (3DIEBench command)"


@dataclass
class EquiCapsSettings(MethodSettings):
    head_batches: str = setting("per_view", "per_view: each view's map through the capsules in its own call (its own "
                                "BatchNorm statistics); joint: both in one", source="EquiCaps src/models.py: "
                                "projector(x_repr), projector(y_repr)", choices=HEAD_BATCHES)
    num_caps: int = setting(32, "capsules: activations (invariant part) and 3x3 poses (equivariant part)",
                            source=f"{SOURCE}: --mlp 1111-16-32, of which only the last number is read", ge=1)
    inv_coeff: float = setting(0.1, "weight of the activations' cross-entropy", source=f"{SOURCE}: --sim-coeff 0.1",
                               ge=0)
    equi_coeff: float = setting(5.0, "weight of the pose term", source=f"{SOURCE}: --equi-factor 5", ge=0)
    std_coeff: float = setting(10.0, "weight of the variance term", source=f"{SOURCE}: --std-coeff 10", ge=0)
    cov_coeff: float = setting(1.0, "weight of the covariance term", source=f"{SOURCE}: --cov-coeff 1", ge=0)
    memax_coeff: float = setting(1.0, "weight of the mean-entropy term (capsules used evenly)",
                                 source="EquiCaps src/models.py: MEMAX_loss added unweighted", ge=0)

    def check(self, cfg: DictConfig) -> None:
        spec = param_spec(cfg)
        if spec.relative_to != "first_view" or tuple(spec.names[:4]) != QUAT_NAMES:
            raise ConfigError(f"method=equicaps needs view pairs with relative rotations: data.dataset 3diebench or "
                              f"factors3d (got data.dataset={cfg.data.dataset!r})")


class EquiCaps(BaseMethod):
    SETTINGS: ClassVar[type[MethodSettings]] = EquiCapsSettings
    READS_FEATURE_MAPS: ClassVar[bool] = True

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        size = int(self.cfg.augmentations[0].crop_size)
        was_training = self.backbone.training
        with torch.no_grad():  # the map's shape sets the routing kernel (the official: resolution // 32)
            self.backbone.eval()(torch.zeros(1, 3, size, size))
        self.backbone.train(was_training)
        channels, height, width = self.feature_map_tap.last.shape[1:]
        self.projector = CapsuleProjector(channels, self.kwargs.num_caps, (height, width))

    @property
    def learnable_params(self) -> list[torch.nn.Module]:
        return super().learnable_params + [self.projector]

    def _capsules(self, feature_map: torch.Tensor) -> torch.Tensor:
        """[activations ; flattened poses], (B, K + 9K): one tensor, so `apply_heads` can batch the views."""
        activations, poses = self.projector(feature_map)
        return torch.cat([activations, poses.flatten(1)], 1)

    def embed(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The equivariant embedding SIE's measures read: the capsules' poses, each 3x3 over its
        Frobenius norm as the loss compares them, flattened (B, K * 9)."""
        return frobenius_normalised(self.projector(feature_map)[1]).flatten(1)

    def predict(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """View 2's embedding from view 1's and the group element: every pose times R1^-1 R2, normalised
        (the loss's transform; no predictor network)."""
        poses = z.view(z.shape[0], -1, 3, 3) @ quat_matrix(g[:, :4]).unsqueeze(1)
        return frobenius_normalised(poses).flatten(1)

    def method_loss(self, view_maps: list[torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        k = self.kwargs
        capsules = apply_heads(self._capsules, k.head_batches, view_maps)
        (x_inv, x_pose), (y_inv, y_pose) = (c.split([k.num_caps, 9 * k.num_caps], 1) for c in capsules)
        x_pose, y_pose = x_pose.unflatten(1, (-1, 3, 3)), y_pose.unflatten(1, (-1, 3, 3))
        rotation = quat_matrix(batch["params"][1][:, :4])
        return equicaps_loss((x_inv, y_inv), (x_pose, y_pose), rotation, k.inv_coeff, k.equi_coeff, k.std_coeff,
                             k.cov_coeff, k.memax_coeff, self.gather_distributed)
