"""Shared fixtures: tiny configs that train in seconds on CPU, and the optional real-image subset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf

REPO = Path(__file__).resolve().parents[1]
CIFAR_SUBSET = REPO.parent / "shared" / "data" / "cifar10-subset"


def tiny_pretrain_cfg(method: str, tmp_path: Path, augmentations: str = "byol", **overrides: Any) -> DictConfig:
    """A complete pretraining config: tiny_cnn on the synthetic dataset, a handful of steps."""
    cfg = OmegaConf.create({
        "name": f"test-{method}",
        "method": method,
        "backbone": {"name": "tiny_cnn", "kwargs": {"width": 8}},
        "method_kwargs": {},
        "data": {"dataset": "synthetic", "synthetic_size": 64, "num_workers": 0},
        "augmentations": OmegaConf.load(REPO / f"scripts/pretrain/cifar/augmentations/{augmentations}.yaml"),
        "optimizer": {"name": "lars", "batch_size": 16, "lr": 0.3, "weight_decay": 1e-6},
        "scheduler": {"name": "warmup_cosine", "warmup_epochs": 0},
        "checkpoint": {"dir": str(tmp_path / "ckpt")},
        "max_epochs": 1,
        "limit_train_batches": 2,
        "limit_val_batches": 1,
        "accelerator": "cpu",
        "precision": "32-true",
        "log_every_n_steps": 1,
    })
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


@pytest.fixture
def cifar_subset() -> Path:
    if not (CIFAR_SUBSET / "train").is_dir():
        pytest.skip(f"CIFAR-10 subset not present at {CIFAR_SUBSET}")
    return CIFAR_SUBSET
