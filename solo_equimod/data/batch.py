"""The named batches every loader yields (torchvision DataLoader, DALI), so that methods and
objectives address inputs by name instead of by position (as lightly-train's TypedDict batch)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, TypedDict

import torch
from torch.utils.data import Dataset


class Batch(TypedDict, total=False):
    """One pretraining batch of B images.

    `views` has >= 2 entries, each (B, 3, h_k, w_k) normalised (views may differ in size, e.g.
    multi-crop); `params[k]` holds the raw Appendix A.1 vectors of `views[k]`, (B, D); `image_size` is
    each input image's (height, width), (B, 2); `original` (B, 3, H, W) uint8 levels (objectives make
    inputs from it on the training device; the method's batch stage normalises it where it is encoded)
    and `color_shift[k]` (B, 3), each channel's mean in [0, 1] before minus after the colour jitter of
    `views[k]`, are present only when an objective asks for them; `extras` holds the named inputs
    objectives asked the pipeline for."""

    index: torch.Tensor
    views: list[torch.Tensor]
    params: list[torch.Tensor]
    image_size: torch.Tensor
    original: torch.Tensor
    color_shift: list[torch.Tensor]
    target: torch.Tensor
    extras: dict[str, Any]


class LabelledBatch(TypedDict):
    """An evaluation batch: deterministic views (or features) and class targets."""

    image: torch.Tensor
    target: torch.Tensor


# optional pretraining inputs an objective may ask for; views, params, image_size, index and target are always there
OPTIONAL_INPUTS: tuple[str, ...] = ("original", "color_shift")


class PipelineRequests(NamedTuple):
    """What the data pipeline adds to each batch for a config's objectives, as the training entry
    computes it from them (`objectives.compose.pipeline_requests`): optional inputs (OPTIONAL_INPUTS)
    and named extra per-image transforms."""

    inputs: frozenset[str]
    extras: dict[str, Callable[..., Any]]


def batch_input(batch: Batch, key: str) -> Any:
    """The batch entry named `key`; `extras.<name>` addresses an extra input and `extras.<name>.<field>`
    one field of an extra whose per-image transform returns a mapping (e.g. an image and its label)."""
    if key.startswith("extras."):
        value = batch["extras"]
        for part in key.removeprefix("extras.").split("."):
            value = value[part]
        return value
    return batch[key]  # type: ignore[literal-required]


def with_input(batch: Batch, key: str, value: Any) -> Batch:
    """A copy of `batch` whose entry named `key` (as `batch_input` reads it) is `value`; `batch` is unchanged."""
    head, _, rest = key.partition(".")
    if not rest:
        return {**batch, key: value}  # type: ignore[misc]
    return {**batch, head: with_input(batch[head], rest, value)}  # type: ignore[literal-required, misc]


class LabelledDataset(Dataset):
    """`(image, target)` samples of any dataset (torchvision's convention) as `LabelledBatch` items."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> LabelledBatch:
        image, target = self.base[index]
        return {"image": image, "target": target}
