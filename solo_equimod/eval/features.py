"""Frozen-backbone features of a whole loader, for the probes that train on cached features (kNN,
linear evaluation with `augment: false`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm


@torch.no_grad()
def extract_features(backbone: nn.Module, loader: DataLoader, desc: str = "features") -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-backbone features and targets of a whole loader of `LabelledBatch`es, with a progress bar."""
    backbone.eval()
    feats, targets = [], []
    for batch in tqdm(loader, desc=desc, leave=False):
        feats.append(backbone(batch["image"]))
        targets.append(batch["target"])
    return torch.cat(feats), torch.cat(targets)
