"""`data.format: tensor`: the training set decoded once into one uint8 tensor on the training
device, each batch indexed from it and augmented there by the batched applier.

For data that fits in memory (CIFAR-10/100, STL-10, `synthetic`, small `custom` folders) this
removes per-image decoding and augmentation in DataLoader workers, the bottleneck of CPU loading.
It yields the same named `Batch` as the other loaders (`solo_equimod.data.batch`). Epochs: a seeded
permutation (seed + epoch, the same on every rank), padded like `DistributedSampler` and strided
across ranks, cut into batches, the incomplete last batch dropped (`solo_equimod.data.epochs.epoch_plan`).

Randomness: the parameters of the batch at (epoch, step) are drawn from a generator seeded by
(seed, rank, epoch, step), so the position in the epoch *is* the RNG state. `state_dict` (which
Lightning saves with every checkpoint, its stateful-dataloader hook) records that position and
the seed; `load_state_dict` makes the next epoch start at that step, so a run killed mid-epoch
and resumed sees exactly the batches of an uninterrupted run.

Images of different sizes (custom folders) are stored as their original view (data.original:
Resize + CenterCrop), so views are cropped from that common-size image; without it, an error.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from lightning.pytorch.utilities import move_data_to_device
from torch.utils.data import Dataset, default_collate
from torchvision import datasets as tvd

from solo_equimod.augment.batched_applier import apply_batch, apply_batch_and_shift
from solo_equimod.augment.pipeline import OriginalView, normalize, to_uint8_tensor
from solo_equimod.augment.policy import ViewPolicy, layout_for
from solo_equimod.augment.sampler import sample_views
from solo_equimod.data.batch import Batch
from solo_equimod.data.describe import dataset_image_sizes
from solo_equimod.data.epochs import EpochSampler, epoch_plan
from solo_equimod.errors import ConfigError

BUDGET_KEY = "data.tensor_budget_gb"


def _raw(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor] | None:
    """torchvision's in-memory arrays as (N, 3, H, W) uint8 and targets, without a per-image loop."""
    if isinstance(dataset, tvd.CIFAR10):  # CIFAR100 too: (N, H, W, C)
        return torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(dataset.targets)
    if isinstance(dataset, tvd.STL10):  # (N, C, H, W)
        return torch.from_numpy(dataset.data).contiguous(), torch.from_numpy(dataset.labels.astype(np.int64))
    return None


def format_size(num_bytes: float) -> str:
    """`num_bytes` to two significant digits in the fitting unit and in GB: '3.1 MB (0.0031 GB)'."""
    value, unit = float(_two_digits(num_bytes)), "B"
    for bigger in ("kB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{_two_digits(value)} {unit} ({_two_digits(num_bytes / 1e9)} GB)"


def _two_digits(value: float) -> str:
    """`value` rounded to two significant digits, in fixed notation ('0.0031', '3.1', '310')."""
    if value == 0:
        return "0"
    value = round(value, 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{max(1 - math.floor(math.log10(abs(value))), 0)}f}"


def stored_size(dataset: Dataset, center_crop: int | None, budget_gb: float) -> tuple[int, int, bool]:
    """(height, width, cropped) of the images as they will be stored, from image headers (a sample of up
    to 256, no pixels decoded); a ConfigError if they differ without `data.original.center_crop`, or if
    the training set would need more than `budget_gb` as uint8 tensors. Run before the run folder is
    claimed (`checks.check_pretrain_data`) and again by `decode_dataset`."""
    sizes = set(dataset_image_sizes(dataset))
    if len(sizes) > 1 and center_crop is None:
        raise ConfigError(f"data.format=tensor needs images of one size, the training data has {len(sizes)} (e.g. "
                          f"{sorted(sizes)[:3]}); set data.original.resize and data.original.center_crop (e.g. 256 and "
                          "224) to store every image as its original view, or use data.format=image_folder or dali")
    cropped = len(sizes) > 1
    height, width = (center_crop, center_crop) if cropped else sizes.pop()
    count = len(dataset)  # type: ignore[arg-type]
    need = count * 3 * height * width
    if need > budget_gb * 1e9:
        raise ConfigError(f"data.format=tensor: the training set ({count} images of {height}x{width}) needs "
                          f"{format_size(need)} as uint8 tensors, over {BUDGET_KEY}={budget_gb} "
                          f"({format_size(budget_gb * 1e9)}); raise {BUDGET_KEY} or use data.format=image_folder or dali")
    return height, width, cropped


def decode_dataset(dataset: Dataset, original: OriginalView, budget_gb: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, H, W) uint8, targets (N,) long) of a `(PIL image, target)` dataset, checked
    against the memory budget before anything is decoded (`stored_size`). An unreadable image is
    the dataset's CorruptImageError naming the file (or, with `data.skip_corrupt`, replaced by the
    next readable one with a warning, as in the other loaders): only a full decode finds truncation."""
    height, width, common = stored_size(dataset, original.center_crop, budget_gb)
    raw = _raw(dataset)
    if raw is not None:
        return raw
    images, targets = [], []
    for i in range(len(dataset)):  # type: ignore[arg-type]
        image, target = dataset[i]
        image = to_uint8_tensor(image)
        if not common and tuple(image.shape[-2:]) != (height, width):  # the size check saw a sample of the images
            raise ConfigError(f"data.format=tensor needs images of one size: training image {i} is "
                              f"{tuple(image.shape[-2:])}, others {(height, width)}; set data.original.resize and "
                              "data.original.center_crop to store every image as its original view")
        images.append(original(image) if common else image)
        targets.append(int(target))
    return torch.stack(images), torch.tensor(targets, dtype=torch.long)


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)


class TensorPretrainLoader:
    """Iterable of pretraining batches from in-memory images; `len()` batches per epoch and shard,
    one epoch per `iter()` (it starts at the first `next()`, after Lightning's `set_epoch`)."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, policies: Sequence[ViewPolicy],
                 mean: Sequence[float], std: Sequence[float], original: OriginalView, with_original: bool,
                 extras: Mapping[str, Callable[[torch.Tensor], Any]] | None, batch_size: int, seed: int = 0,
                 shard_id: int = 0, num_shards: int = 1, progress: Callable[[], int] | None = None,
                 with_color_shift: bool = False) -> None:
        if batch_size < 1 or batch_size * num_shards > len(images):
            raise ValueError(f"batch_size={batch_size} must be in [1, {len(images) // num_shards}] for {len(images)} "
                             f"images over {num_shards} shard(s)")
        self.images, self.targets = images, targets.to(images.device)
        self.policies, self.layout = list(policies), layout_for(policies)
        self.mean, self.std, self.original, self.with_original = list(mean), list(std), original, with_original
        self.extras, self.with_color_shift = dict(extras or {}), with_color_shift
        self.batch_size, self.seed, self.shard_id, self.num_shards = batch_size, seed, shard_id, num_shards
        self.progress = progress  # batches the trainer completed this epoch (None: the batches yielded)
        self.sampler = EpochSampler()
        self.epoch, self.yielded = 0, 0
        self._resume: dict[str, int] | None = None

    def __len__(self) -> int:
        return -(-len(self.images) // self.num_shards) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        return self._epoch()

    def _epoch(self) -> Iterator[Batch]:
        self.epoch = self.sampler.next_epoch()
        plan = epoch_plan(len(self.images), self.epoch, self.seed, self.shard_id, self.num_shards, self.batch_size,
                          drop_last=True)
        start = 0
        if self._resume is not None and self._resume["epoch"] == self.epoch:
            start = self._resume["step"]
        self._resume = None
        for step in range(start, len(plan)):
            self.yielded = step + 1
            yield self.batch(torch.from_numpy(plan[step]), step)

    def batch(self, index: torch.Tensor, step: int) -> Batch:
        """The batch of these dataset indexes at this step of the current epoch."""
        device = self.images.device
        generator = torch.Generator().manual_seed(_seed(self.seed, self.shard_id, self.epoch, step))
        index = index.to(device)
        images = self.images[index]
        heights, widths = torch.full((len(index),), images.shape[2]), torch.full((len(index),), images.shape[3])
        views, params, shifts = [], [], []
        for policy in self.policies:
            drawn = sample_views(policy, heights, widths, generator)
            view, shift = apply_batch_and_shift(images, drawn, policy) if self.with_color_shift else \
                (apply_batch(images, drawn, policy), None)
            views.append(normalize(view, self.mean, self.std))
            params.append(self.layout.encode_batch(drawn).to(device))
            shifts.append(shift)
        batch: Batch = {"index": index, "views": views, "params": params,
                        "image_size": torch.stack([heights, widths], 1).to(device),
                        "target": self.targets[index], "extras": self._extras(images, generator)}
        if self.with_original:
            batch["original"] = self.original(images)  # uint8 levels: the method's batch stage normalises it
        if self.with_color_shift:
            batch["color_shift"] = shifts
        return batch

    def _extras(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, Any]:
        """The objectives' per-image transforms, one image at a time, their global-RNG draws seeded
        from this step's generator (so they resume exactly too)."""
        if not self.extras:
            return {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
            made = default_collate([{name: make(image) for name, make in self.extras.items()} for image in images.cpu()])
        return move_data_to_device(made, images.device)

    def state_dict(self) -> dict[str, int]:
        """The position to continue from: the epoch and the batches the trainer has completed in it."""
        done = self.progress() if self.progress is not None else self.yielded
        epoch, step = (self.epoch + 1, 0) if done >= len(self) else (self.epoch, done)
        return {"epoch": epoch, "step": step, "seed": self.seed, "num_shards": self.num_shards}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        if (state["seed"], state["num_shards"]) != (self.seed, self.num_shards):
            raise ValueError(f"data.format=tensor: the checkpoint's loader ran with seed={state['seed']} over "
                             f"{state['num_shards']} process(es), this run with seed={self.seed} over {self.num_shards}; "
                             "its batches cannot be continued")
        self._resume = {"epoch": int(state["epoch"]), "step": int(state["step"])}
