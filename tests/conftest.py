"""Shared fixtures: tiny configs that train in seconds on CPU, and the optional real-image subset."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf

from solo_equimod.methods import METHODS
from solo_equimod.objectives import METHOD_ALIASES, OBJECTIVES

REPO = Path(__file__).resolve().parents[1]
CIFAR_SUBSET = REPO.parent / "shared" / "data" / "cifar10-subset"
TEST_HEAD_WIDTH = 64


def tiny_pretrain_cfg(method: str, tmp_path: Path, augmentations: str = "byol", head_width: int | None = TEST_HEAD_WIDTH,
                      **overrides: Any) -> DictConfig:
    """A complete pretraining config: tiny_cnn on the synthetic dataset, a handful of steps, heads
    `head_width` wide (None: the method's and objectives' own widths)."""
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
    return cfg if head_width is None else narrow_heads(cfg, head_width)


def narrow_heads(cfg: DictConfig, width: int) -> DictConfig:
    """Every head's hidden width not set by the test becomes `width`: the papers' 2048-4096 made a test
    checkpoint ~70 MB and a suite run ~4 GB of disk, while no test's behaviour depends on the width."""
    _, implied = METHOD_ALIASES.get(cfg.method, (cfg.method, ()))
    given_objectives = cfg.get("objectives") or {}
    groups = [("method_kwargs", METHODS[cfg.method].SETTINGS)] if cfg.method in METHODS else []
    groups += [(f"objectives.{name}", OBJECTIVES[name].SETTINGS)
               for name in dict.fromkeys([*given_objectives, *implied]) if name in OBJECTIVES]
    for key, declaration in groups:
        given = OmegaConf.select(cfg, key) or {}
        narrowed = {f.name: width for f in dataclasses.fields(declaration)
                    if f.name.endswith("hidden_dim") and f.name not in given}
        OmegaConf.update(cfg, key, {**given, **narrowed}, force_add=True)
    return cfg


@pytest.fixture
def cifar_subset() -> Path:
    if not (CIFAR_SUBSET / "train").is_dir():
        pytest.skip(f"CIFAR-10 subset not present at {CIFAR_SUBSET}")
    return CIFAR_SUBSET


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` by relative path, with its bytes: compare two to prove nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_image_folder(root: Path, classes: int, per_class: int, size: tuple[int, int] = (32, 32),
                       seed: int = 0) -> Path:
    """An ImageFolder tree of random RGB PNGs: `root/c<k>/img_<i>.png`."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k in range(classes):
        (root / f"c{k}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"c{k}" / f"img_{i}.png")
    return root


class Evil:
    """Unpickling it would create `marker`: a stand-in for arbitrary code in a crafted checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


def write_malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A file shaped like a pretraining checkpoint whose loading with pickle would run `Evil`."""
    import torch

    torch.save({"hyper_parameters": {"cfg": {"method": "simclr"}}, "state_dict": {}, "global_step": 999,
                "epoch": 99, "payload": Evil(marker)}, path)
    return path


def truncate_as_jpeg(png: Path) -> Path:
    """Replace `png` by a JPEG of it cut inside its scan data: the header reads, the pixels do not."""
    from PIL import Image

    bad = png.with_suffix(".jpg")
    Image.open(png).save(bad, quality=100)
    png.unlink()
    data = bad.read_bytes()
    bad.write_bytes(data[: data.index(b"\xff\xda") + 20])
    return bad
