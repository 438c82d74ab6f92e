"""The `external_source` of the DALI pipeline (`Feeder`) and what the pipeline is built from
(`PipelineSpec`): per batch, the encoded files, their dataset indexes and every view's parameters,
drawn here by the one batch-level sampler (`solo_equimod.augment.sampler`)."""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from solo_equimod.augment.params import AugmentationLayout
from solo_equimod.augment.pipeline import OriginalView
from solo_equimod.augment.policy import ViewPolicy
from solo_equimod.augment.sampler import sample_views
from solo_equimod.data.dali.files import check_image
from solo_equimod.data.images import CorruptImageError

PREFETCH = 2  # DALI's default queue depth; also how many fed batches can be in flight at once


@dataclass(frozen=True)
class PipelineSpec:
    policies: tuple[ViewPolicy, ...]
    layout: AugmentationLayout
    mean: tuple[float, ...]
    std: tuple[float, ...]
    original: OriginalView
    with_original: bool
    batch_size: int
    num_threads: int
    device: str
    device_id: int | None


class Feeder:
    """The `external_source` of the pipeline: per batch, the encoded files, their dataset indexes,
    and every view's parameters drawn here by the batch-level sampler (`sample_views`) from a
    generator seeded by (seed, shard), in the order of `self.names`.

    DALI calls `iter()` on it when an epoch ends and `next()` when it needs data; the plan of the
    epoch is set by the loader before, so DALI's eager re-`iter()` cannot start a wrong epoch.
    """

    def __init__(self, files: Sequence[str], spec: "PipelineSpec", seed: int, skip_corrupt: bool) -> None:
        from solo_equimod.augment.dali_ops import original_feed_names, view_feed_names

        self.files = list(files)
        self.spec = spec
        self.generator = torch.Generator().manual_seed(seed)
        self.skip_corrupt = skip_corrupt
        self.bad: set[int] = set()
        self.sizes = np.zeros((len(files), 2), dtype=np.int64)  # (height, width) once read
        self.plan: list[np.ndarray] = []
        self.cursor = 0
        self.fed: list[int] = []  # plan positions of the batches handed to DALI this epoch
        self.in_flight: deque[np.ndarray] = deque(maxlen=PREFETCH + 1)
        self.names = ["encoded", "index"]
        if spec.with_original:
            self.names += [f"original_{name}" for name in original_feed_names(spec.original)]
        self.names += [f"view{v}_{name}" for v, policy in enumerate(spec.policies) for name in view_feed_names(policy)]

    def begin(self, plan: list[np.ndarray], cursor: int = 0) -> None:
        self.plan, self.cursor = plan, cursor
        self.fed = self.fed[:0] if cursor == 0 else self.fed
        self.in_flight.clear()

    def stop(self) -> None:
        self.cursor = len(self.plan)

    def __iter__(self) -> "Feeder":
        return self

    def __next__(self) -> list[Any]:
        while self.cursor < len(self.plan):
            wanted = self.plan[self.cursor]
            self.cursor += 1
            data, index = [], []
            for i in wanted:
                encoded = self._read(int(i))
                if encoded is not None:
                    data.append(encoded)
                    index.append(int(i))
            self.in_flight.append(np.array(index, dtype=np.int64))
            if data:
                self.fed.append(self.cursor - 1)
                return self._feed(data, np.array(index, dtype=np.int64))
        raise StopIteration

    def _feed(self, data: list[np.ndarray], index: np.ndarray) -> list[Any]:
        from solo_equimod.augment.dali_ops import original_feed, view_feed

        heights, widths = self.sizes[index, 0], self.sizes[index, 1]
        fed = {"encoded": data, "index": index}
        if self.spec.with_original:
            fed.update({f"original_{k}": v for k, v in original_feed(self.spec.original, heights, widths).items()})
        for v, policy in enumerate(self.spec.policies):
            drawn = sample_views(policy, torch.from_numpy(heights), torch.from_numpy(widths), self.generator)
            draws = view_feed(self.spec.layout, drawn)
            fed.update({f"view{v}_{k}": value for k, value in draws.items()})
        return [fed[name] for name in self.names]

    def _read(self, i: int) -> np.ndarray | None:
        if i in self.bad:
            return None
        data, size, why = check_image(self.files[i])
        if data is None:
            self.mark_bad(i, why)
            return None
        self.sizes[i] = size
        return data

    def mark_bad(self, i: int, why: str) -> None:
        message = f"corrupt image file {self.files[i]!r}: {why}"
        if not self.skip_corrupt:
            raise CorruptImageError(message + " (data.skip_corrupt=true skips such files with a warning)")
        warnings.warn(f"skipping {message}", stacklevel=2)
        self.bad.add(i)
