"""The batch stage: what a training step does to the loader's batch on the training device before
encoding it.

1. Every objective that `makes` inputs derives them from the batch's uint8 original (CARE's chunked
   views, STL's aligned pairs, which replace the loader's views), in config order.
2. Every image input that the step encodes and that arrives or was made as uint8 levels (the
   original, the made inputs) is normalised with the dataset's mean and std, once, here. A floating-
   point input is one this stage (or the caller) normalised already and passes through, so staging a
   staged batch changes nothing.

So the loaders deliver the original as it was decoded (no normalise-then-undo round trip), an
objective never normalises, and an input the step does not encode (CARE's original) is never
normalised at all. The loaders' own views arrive normalised and pass through.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from solo_equimod.augment.pipeline import normalize
from solo_equimod.data.batch import Batch, batch_input, with_input
from solo_equimod.objectives.base import Objective

RAW_INPUTS: tuple[str, ...] = ("original",)  # what every loader delivers as uint8 levels (`data.batch.Batch`)


def _uint8_images(value: object, what: str, normalised_ok: bool = False) -> list[torch.Tensor]:
    """The (B, 3, H, W) image tensors of an input (a tensor or a list of them): uint8 levels, or (where
    `normalised_ok`) floating-point ones already normalised; else a ValueError naming it."""
    images = list(value) if isinstance(value, (list, tuple)) else [value]
    for image in images:
        is_tensor = isinstance(image, torch.Tensor)
        levels = is_tensor and (image.dtype == torch.uint8 or (normalised_ok and image.is_floating_point()))
        if not levels or image.ndim != 4:
            got = f"{image.dtype} {tuple(image.shape)}" if is_tensor else type(image).__name__
            valid = "uint8 levels or normalised floats" if normalised_ok else "uint8 levels"
            raise ValueError(f"{what} must be {valid} (B, 3, H, W), got {got}: the batch stage normalises levels")
    return images


class BatchStage:
    """Makes the objectives' inputs from the uint8 original, then normalises every raw input encoded."""

    def __init__(self, objectives: Iterable[Objective], encoded: Iterable[str], mean: Sequence[float],
                 std: Sequence[float]) -> None:
        self.makers = [o for o in objectives if o.makes]
        made = [key for objective in self.makers for key in objective.makes]
        encoded = set(encoded)
        self.normalised = [key for key in (*RAW_INPUTS, *made) if key in encoded]
        self.mean, self.std = list(mean), list(std)

    def __call__(self, batch: Batch) -> Batch:
        for key in RAW_INPUTS:  # an objective makes inputs from them: then they must still be levels
            if key in batch:
                _uint8_images(batch_input(batch, key), f"batch[{key!r}]", normalised_ok=not self.makers)
        for objective in self.makers:
            made = objective.derive(batch)
            extras = {**(batch.get("extras") or {}), **(made.get("extras") or {})}
            batch = {**batch, **made, "extras": extras}  # type: ignore[typeddict-item]
            for key in objective.makes:
                _uint8_images(batch_input(batch, key), f"{type(objective).__name__}.derive's {key!r}")
        for key in self.normalised:
            value = batch_input(batch, key)
            images = [image if image.is_floating_point() else normalize(image, self.mean, self.std)
                      for image in _uint8_images(value, f"batch[{key!r}]", normalised_ok=True)]
            batch = with_input(batch, key, images if isinstance(value, (list, tuple)) else images[0])
        return batch
