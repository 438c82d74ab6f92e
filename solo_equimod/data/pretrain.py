"""Pretraining and online-validation data: named `Batch`es (`solo_equimod.data.batch`) with the
inputs the configured objectives ask for (given as `PipelineRequests` by the training entry), and
`LabelledBatch`es for the online classifier.

`data.format: image_folder` (default) decodes and augments with torchvision in DataLoader workers;
`data.format: dali` hands the training loader to NVIDIA DALI (`solo_equimod.data.dali`);
`data.format: tensor` keeps the decoded training set in memory on the training device and augments
batches there (`solo_equimod.data.tensor_loader`).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as F

from solo_equimod.augment import OriginalView, ParamPretrainTransform, policies_from_config
from solo_equimod.augment.pipeline import to_uint8_tensor
from solo_equimod.config.choices import VIEW_DATASETS
from solo_equimod.data.batch import Batch, LabelledDataset, PipelineRequests
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.data.datasets import build_dataset
from solo_equimod.data.describe import dataset_image_sizes
from solo_equimod.data.views3d import ViewPairs, group_spec, sample_group_elements

# what each `data.format` can make besides the views: the original image, the views' colour shifts across
# jitter and objectives' per-image extras
FORMAT_INPUTS: dict[str, frozenset[str]] = {
    "image_folder": frozenset({"original", "color_shift", "extras"}),
    # DALI's graph has no place for an objective's per-image Python transform; its loader does not output the
    # colour shift (it would be per-channel means around `dali_ops.apply_jitter`, not built)
    "dali": frozenset({"original"}),
    "tensor": frozenset({"original", "color_shift", "extras"}),
}


class PretrainDataset(Dataset):
    """Wraps a `(PIL image, target)` dataset into samples of a `Batch`."""

    def __init__(self, base: Dataset, transform: ParamPretrainTransform) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Batch:
        image, target = self.base[index]
        return {"index": index, **self.transform(image), "target": int(target)}  # type: ignore[typeddict-item]


class EvalTransform:
    """Deterministic view for validation and feature extraction: the original view, normalised."""

    def __init__(self, mean: list[float], std: list[float], original: OriginalView) -> None:
        self.mean, self.std, self.original = mean, std, original

    def __call__(self, image: Any) -> torch.Tensor:
        image = self.original(to_uint8_tensor(image))
        return F.normalize(F.to_dtype(image, torch.float32, scale=True), self.mean, self.std)


def original_view(cfg: DictConfig) -> OriginalView:
    return OriginalView(resize=cfg.data.original.resize, center_crop=cfg.data.original.center_crop)


def build_pretrain_transform(cfg: DictConfig, requests: PipelineRequests) -> ParamPretrainTransform:
    """The per-image transform, making the original and the extras only if the objectives' `requests`
    ask for them (what each data.format and dataset can make: `data.checks.check_data_config`)."""
    info = DATASET_INFO[cfg.data.dataset]
    inputs, extras = requests
    return ParamPretrainTransform(policies_from_config(cfg.augmentations), info.mean, info.std, original_view(cfg),
                                  with_original="original" in inputs, extras=extras,
                                  with_color_shift="color_shift" in inputs)


def build_eval_transform(cfg: DictConfig) -> EvalTransform:
    info = DATASET_INFO[cfg.data.dataset]
    return EvalTransform(list(info.mean), list(info.std), original_view(cfg))


def build_split(cfg: DictConfig, split: str, transform: Any) -> Dataset | None:
    """The dataset of a split (`train` / `val`), or None for a custom dataset without `val_path`."""
    root = cfg.data.train_path if split == "train" else cfg.data.val_path
    if cfg.data.dataset in VIEW_DATASETS:  # one root holds both splits (train_images.npy, val_images.npy)
        root = root or cfg.data.train_path
    if split == "val" and root is None and cfg.data.dataset in ("custom", "imagenet", "imagenet100"):
        return None
    size = cfg.data.synthetic_size if split == "train" else None
    return build_dataset(cfg.data.dataset, root, split, transform=transform, download=cfg.data.download,
                         synthetic_size=size, skip_corrupt=cfg.data.skip_corrupt)


class PretrainDataModule(pl.LightningDataModule):
    """Train loader of augmented views with parameters; val loader of (image, target) for the
    online classifier, the views carrying what the objectives' `requests` ask for. Built lazily so
    DALI shards know their rank."""

    def __init__(self, cfg: DictConfig, requests: PipelineRequests) -> None:
        super().__init__()
        self.cfg = cfg
        self.transform = build_pretrain_transform(cfg, requests)
        self.train_set = build_split(cfg, "train", transform=None)
        self.val_set = build_split(cfg, "val", transform=build_eval_transform(cfg))
        self._tensors: tuple[torch.Tensor, torch.Tensor] | None = None  # data.format=tensor: decoded once
        self._tensor_loader_built: Any = None
        self._tensor_state: dict[str, int] | None = None

    def sample_param_vectors(self, count: int, seed: int) -> torch.Tensor:
        """A seeded sample of the training `params` (the statistics EquiMod normalises with): group
        elements of random view pairs for datasets of renderings, else augmentation parameters drawn
        by the same sampler over the dataset's image sizes."""
        if self.cfg.data.dataset in VIEW_DATASETS:
            return sample_group_elements(self.train_set, group_spec(self.cfg.data.group), count, seed)
        return self.transform.sample_param_vectors(dataset_image_sizes(self.train_set, seed=seed), count, seed)

    def pretrain_set(self) -> Dataset:
        """`Batch` samples: pairs of renderings with group elements (VIEW_DATASETS: SIE's only transform is
        Resize(crop_size) + Normalize), else augmented views of each image with their parameters."""
        cfg = self.cfg
        if cfg.data.dataset in VIEW_DATASETS:
            info = DATASET_INFO[cfg.data.dataset]
            return ViewPairs(self.train_set, group_spec(cfg.data.group), self.transform.policies[0].crop_size,
                             info.mean, info.std)
        return PretrainDataset(self.train_set, self.transform)

    def train_dataloader(self) -> Any:
        cfg = self.cfg
        if cfg.data.format == "dali":
            return self._dali_loader()
        if cfg.data.format == "tensor":
            return self._tensor_loader()
        return DataLoader(
            self.pretrain_set(), batch_size=cfg.optimizer.batch_size, shuffle=True,
            num_workers=cfg.data.num_workers, drop_last=True, pin_memory=torch.cuda.is_available(),
            persistent_workers=cfg.data.num_workers > 0,
        )

    def val_dataloader(self) -> Any:
        if self.val_set is None:
            return []
        return DataLoader(LabelledDataset(self.val_set), batch_size=self.cfg.optimizer.batch_size, shuffle=False,
                          num_workers=self.cfg.data.num_workers, persistent_workers=self.cfg.data.num_workers > 0)

    def _dali_loader(self) -> Any:
        from solo_equimod.data.dali.build import build_dali_pretrain_loader

        cfg, trainer = self.cfg, self.trainer
        on_gpu = trainer is not None and trainer.accelerator.__class__.__name__ == "CUDAAccelerator"
        info = DATASET_INFO[cfg.data.dataset]
        return build_dali_pretrain_loader(
            root=cfg.data.train_path, policies=self.transform.policies, mean=info.mean, std=info.std,
            original=self.transform.original, with_original=self.transform.with_original,
            extras=self.transform.extras, batch_size=cfg.optimizer.batch_size,
            num_threads=max(1, cfg.data.num_workers), device="gpu" if on_gpu else "cpu",
            device_id=trainer.local_rank if on_gpu else None,
            shard_id=trainer.global_rank if trainer else 0, num_shards=trainer.world_size if trainer else 1,
            seed=cfg.seed, drop_last=True, skip_corrupt=cfg.data.skip_corrupt,
        )

    def read_ahead(self) -> None:
        """Read now what the train loader would read later and a bad file can break, so that it fails
        before the run folder is claimed: data.format=tensor decodes its training set here, once
        (only a full decode finds a truncated image); the other formats read their files lazily."""
        if self.cfg.data.format == "tensor" and self._tensors is None:
            from solo_equimod.data.tensor_loader import decode_dataset

            self._tensors = decode_dataset(self.train_set, self.transform.original, self.cfg.data.tensor_budget_gb)

    def _tensor_loader(self) -> Any:
        from solo_equimod.data.tensor_loader import TensorPretrainLoader

        cfg, trainer = self.cfg, self.trainer
        self.read_ahead()
        images, targets = self._tensors
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        info = DATASET_INFO[cfg.data.dataset]
        progress = None if trainer is None else (lambda: trainer.fit_loop.epoch_loop.batch_progress.current.completed)
        loader = TensorPretrainLoader(
            images.to(device), targets, self.transform.policies, info.mean, info.std, self.transform.original,
            self.transform.with_original, self.transform.extras, cfg.optimizer.batch_size, seed=cfg.seed,
            shard_id=trainer.global_rank if trainer else 0, num_shards=trainer.world_size if trainer else 1,
            progress=progress, with_color_shift=self.transform.with_color_shift,
        )
        if self._tensor_state is not None:
            loader.load_state_dict(self._tensor_state)
        self._tensor_loader_built = loader
        return loader

    # The tensor loader's position also travels through the datamodule's checkpoint hooks: Lightning
    # builds the train loader early when the LR schedule asks for `estimated_stepping_batches`, and
    # then skips its own stateful-dataloader restore (`FitLoop._load_combined_loader_states`).
    def state_dict(self) -> dict[str, Any]:
        loader = self._tensor_loader_built
        return {} if loader is None else {"tensor_loader": loader.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._tensor_state = state_dict.get("tensor_loader")
        if self._tensor_state is not None and self._tensor_loader_built is not None:
            self._tensor_loader_built.load_state_dict(self._tensor_state)
