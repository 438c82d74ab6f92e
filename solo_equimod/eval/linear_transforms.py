"""The views of linear evaluation: the deterministic test view (Resize + CenterCrop, sizes from the
official code unless configured) and the augmented training view (RandomResizedCrop + flip)."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torchvision.transforms import v2

from solo_equimod.data.dataset_info import DATASET_INFO


def evaluation_view(cfg: DictConfig, crop_size: int) -> tuple[int, int, str]:
    """(resize, center crop, interpolation) of the evaluation view: the configured values, else the
    official code's for the pretraining crop size (CIFAR-size, 32: 36 / 32; ImageNet-size: 256 / 224)."""
    default = (round(crop_size * 36 / 32), crop_size) if crop_size <= 64 else (256, 224)
    view = cfg.test_view
    return (view.resize or default[0], view.center_crop or default[1], view.interpolation)


def _normalize(dataset: str) -> list[v2.Transform]:
    info = DATASET_INFO[dataset]
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std)]


def test_transform(cfg: DictConfig, crop_size: int) -> v2.Compose:
    resize, crop, interpolation = evaluation_view(cfg, crop_size)
    mode = v2.InterpolationMode(interpolation)
    return v2.Compose([v2.ToImage(), v2.Resize(resize, interpolation=mode, antialias=True), v2.CenterCrop(crop),
                       *_normalize(cfg.data.dataset)])


def train_transform(pretrain_cfg: DictConfig, cfg: DictConfig) -> v2.Compose:
    """RandomResizedCrop (scale 0.08-1, bicubic as the official code) + horizontal flip."""
    crop = int(pretrain_cfg.augmentations[0].crop_size)
    mode = v2.InterpolationMode(cfg.test_view.interpolation)
    return v2.Compose([v2.ToImage(), v2.RandomResizedCrop(crop, interpolation=mode, antialias=True),
                       v2.RandomHorizontalFlip(), *_normalize(cfg.data.dataset)])
