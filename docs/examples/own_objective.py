"""Writing your own objective: a variance floor on the backbone features of the views (the
variance term of VICReg, Bardes et al. 2022, Eq. 1, applied to h instead of the projection), added
to any method with `+objectives.feature_variance.weight=...`.

Run it from the repository, `PYTHONPATH=. python docs/examples/own_objective.py`: it trains SimCLR +
this objective for two steps on the built-in synthetic data and prints the objectives of its config.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from solo_equimod.config.settings import setting
from solo_equimod.data.batch import Batch
from solo_equimod.objectives import OBJECTIVES, Features, Objective, ObjectiveContext
from solo_equimod.objectives.base import ObjectiveSettings


# 1. The settings, declared once: type, default, rule, help and where the default comes from.
@dataclass
class FeatureVarianceSettings(ObjectiveSettings):
    target_std: float = setting(1.0, "each feature's standard deviation over the batch should reach this",
                                source="VICReg Eq. 1: gamma = 1", gt=0)
    eps: float = setting(1e-4, "added to the variance before the square root", source="VICReg Eq. 1", gt=0)


# 2. The objective: what it reads, its modules (none here) and its loss.
class FeatureVariance(Objective):
    """mean_j relu(target_std - sqrt(Var(h_j) + eps)) over each view's backbone features h."""

    SETTINGS = FeatureVarianceSettings

    def __init__(self, settings: FeatureVarianceSettings, context: ObjectiveContext) -> None:
        super().__init__(settings, context)
        self.target_std, self.eps = settings.target_std, settings.eps

    def forward(self, batch: Batch, feats: Features) -> dict[str, torch.Tensor]:
        floors = [F.relu(self.target_std - torch.sqrt(h.var(dim=0) + self.eps)).mean() for h in feats["views"]]
        return {"loss": torch.stack(floors).mean()}


# 3. Register it under the name configs use.
OBJECTIVES["feature_variance"] = FeatureVariance


def train_two_steps(run_root: str) -> str:
    """SimCLR + feature_variance on the synthetic data, two steps on the CPU; returns the run folder."""
    from solo_equimod.cli import pretrain_main

    tiny = ["data.synthetic_size=64", "data.num_workers=0", "backbone.name=tiny_cnn", "backbone.kwargs.width=8",
            "optimizer.batch_size=16", "max_epochs=1", "limit_train_batches=2", "limit_val_batches=0",
            "method_kwargs.proj_hidden_dim=64", "accelerator=cpu"]
    pretrain_main(["--config-name", "synthetic/simclr", "+objectives.feature_variance.weight=0.5",
                   f"checkpoint.dir={run_root}", "name=own_objective", *tiny])
    return f"{run_root}/own_objective"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as root:
        run = train_two_steps(root)
        print(open(f"{run}/config.yaml").read().split("objectives:")[1].split("data:")[0])
