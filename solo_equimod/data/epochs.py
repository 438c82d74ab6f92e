"""The epochs of the loaders that own their sampling (`data.format` dali and tensor): which dataset
indexes each rank sees in which batch of an epoch. Imports no loader, so both can use it.

Each epoch is a seeded permutation of the whole dataset (seed + epoch, identical on every rank),
padded like `DistributedSampler` to a multiple of `num_shards` and strided across ranks, then cut
into batches; with `drop_last` the incomplete last batch of a shard is dropped, otherwise it is
yielded smaller. `loader.sampler.set_epoch(e)`, which Lightning calls before each epoch, sets the
epoch number (`EpochSampler`).
"""

from __future__ import annotations

import numpy as np
import torch


def epoch_plan(
    dataset_size: int, epoch: int, seed: int, shard_id: int, num_shards: int, batch_size: int, drop_last: bool
) -> list[np.ndarray]:
    """The index batches of one shard for one epoch (DistributedSampler semantics, then batching)."""
    generator = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(dataset_size, generator=generator)
    per_shard = -(-dataset_size // num_shards)
    padding = per_shard * num_shards - dataset_size
    if padding:
        order = torch.cat([order, order.repeat(-(-padding // dataset_size))[:padding]])
    shard = order[shard_id::num_shards].numpy().astype(np.int64)
    stop = len(shard) - len(shard) % batch_size if drop_last else len(shard)
    return [shard[i : i + batch_size] for i in range(0, stop, batch_size)]


class EpochSampler:
    """Holds the epoch number; `set_epoch` is what Lightning calls on `loader.sampler`."""

    def __init__(self) -> None:
        self.epoch = 0
        self._explicit = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._explicit = int(epoch), True

    def next_epoch(self) -> int:
        """The epoch to run now; without set_epoch, epochs count up from 0 by themselves."""
        epoch = self.epoch
        if not self._explicit:
            self.epoch += 1
        self._explicit = False
        return epoch
