"""The seeded loader of `AugmentationViews` over a split and the backbone features of its batches:
what the equivariance and sensitivity commands share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from solo_equimod.augment import layout_for, policies_from_config
from solo_equimod.config.schema import DataConfig
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.data.pretrain import build_split, original_view
from solo_equimod.errors import ConfigError
from solo_equimod.eval.augmentation_views import AugmentationViews, measured_policies
from solo_equimod.methods import BaseMethod


@dataclass
class ViewsConfig:
    """Shared by the equivariance and sensitivity commands."""

    pretrained_feature_extractor: str = "???"
    data: DataConfig = field(default_factory=DataConfig)  # unset keys: the checkpoint's pretraining data
    split: str = "val"  # images the measures are averaged over
    max_images: Optional[int] = None  # a seeded random subset of the split; None: all of it
    batch_size: int = 256
    num_workers: int = 2
    seed: int = 0
    output_dir: Optional[str] = None  # default: the checkpoint's folder
    overwrite: bool = False  # replace existing report files (else refused before the evaluation runs)


@dataclass
class EncodedViews:
    """Backbone features of originals and of each augmentation's views, with the raw parameters (and,
    for a predictor from examples, the examples' features: `AugmentationViews(with_examples=True)`)."""

    original: torch.Tensor
    views: dict[str, torch.Tensor]
    params: dict[str, torch.Tensor]
    example_original: torch.Tensor | None = None
    example_views: dict[str, torch.Tensor] | None = None


def view_loader(cfg: DictConfig, method: BaseMethod, split: str) -> DataLoader:
    """Seeded loader of `AugmentationViews` over `split`, for the policies `method` was trained with."""
    if cfg.max_images is not None and cfg.max_images < 1:
        raise ConfigError(f"max_images={cfg.max_images}: use a positive number of images, or null for all of them")
    base = build_split(cfg, split, None)
    if base is None:
        raise ConfigError(f"split {split!r} has no data: set data.{split}_path")
    generator = torch.Generator().manual_seed(cfg.seed)
    if cfg.max_images is not None and cfg.max_images < len(base):  # type: ignore[arg-type]
        base = Subset(base, torch.randperm(len(base), generator=generator)[:cfg.max_images].tolist())  # type: ignore[arg-type]
    policies = policies_from_config(method.cfg.augmentations)
    info = DATASET_INFO[cfg.data.dataset]
    dataset = AugmentationViews(base, measured_policies(policies), layout_for(policies), list(info.mean),
                                list(info.std), original_view(cfg), with_examples=method.example_predictor is not None)
    return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.num_workers,
                      generator=generator)


@torch.no_grad()
def encode_views(backbone: torch.nn.Module, loader: DataLoader, desc: str) -> EncodedViews:
    """h = f(x) of every original and view (eval mode), with a progress bar."""
    backbone.eval()
    torch.manual_seed(loader.generator.initial_seed() if loader.generator else 0)  # seeds the views' draws
    orig, views, params, example_orig, example_views = [], {}, {}, [], {}
    for batch in tqdm(loader, desc=desc):
        orig.append(backbone(batch["original"]))
        for aug, x in batch["views"].items():
            views.setdefault(aug, []).append(backbone(x))
            params.setdefault(aug, []).append(batch["params"][aug])
        if "example_original" in batch:
            example_orig.append(backbone(batch["example_original"]))
            for aug, x in batch["example_views"].items():
                example_views.setdefault(aug, []).append(backbone(x))
    cat = lambda d: {a: torch.cat(v) for a, v in d.items()}  # noqa: E731
    return EncodedViews(torch.cat(orig), cat(views), cat(params), torch.cat(example_orig) if example_orig else None,
                        cat(example_views) if example_orig else None)
