"""The 3D factor bench as a dataset: procedural objects, each rendered on the fly in any of its views."""

from __future__ import annotations

import functools
import zlib
from typing import Callable

import numpy as np
from PIL import Image

from solo_equimod.data.factors3d.render import SHAPES, draw_latents, hsv, render
from solo_equimod.data.views3d import ObjectViews

OBJECTS_PER_CLASS: dict[str, int] = {"train": 64, "val": 16}
NUM_VIEWS, IMAGE_SIZE = 50, 32


class Factors3D(ObjectViews):
    """`objects` procedural objects (class = index % number of shapes, so any prefix is balanced),
    `num_views` renderings each; object i and its latents are seeded by (seed, split, i)."""

    def __init__(self, split: str = "train", objects: int | None = None, num_views: int = NUM_VIEWS,
                 image_size: int = IMAGE_SIZE, seed: int = 0, transform: Callable | None = None) -> None:
        super().__init__(transform)
        count = len(SHAPES) * OBJECTS_PER_CLASS.get(split, OBJECTS_PER_CLASS["val"]) if objects is None else objects
        if count < 1 or num_views < 2 or image_size < 8:
            raise ValueError(f"factors3d: needs objects >= 1 (got {count}), num_views >= 2 (got {num_views}) and "
                             f"image_size >= 8 (got {image_size})")
        self.split, self.seed, self.num_views, self.image_size = split, seed, num_views, image_size
        self.classes = list(SHAPES)
        self.targets = [i % len(SHAPES) for i in range(count)]

    def _rng(self, index: int, *more: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(self.split.encode()), index, *more])

    def object_name(self, index: int) -> str:
        return f"{self.split}_{index:05d}"

    def _object(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = self._rng(index)
        scale = rng.uniform(0.75, 1.2, 3)
        hue = rng.random()
        palette = np.stack([hsv(hue + k * 0.17, 0.75 - 0.06 * k, 0.95 - 0.05 * k) for k in range(12)])
        return scale, palette

    def latents(self, index: int) -> np.ndarray:
        return draw_latents(self._rng(index, 1), self.num_views)

    def image(self, index: int, view: int) -> Image.Image:
        return Image.fromarray(_cached_render(self, index, view), "RGB")

    def render_array(self, index: int, view: int) -> np.ndarray:
        scale, palette = self._object(index)
        return np.asarray(render(SHAPES[self.targets[index]], scale, palette, self.latents(index)[view], self.image_size))

    def __hash__(self) -> int:  # the cache key: what decides the pixels
        return hash((self.split, self.seed, self.image_size, self.num_views))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Factors3D) and hash(self) == hash(other)


@functools.lru_cache(maxsize=32768)  # ~100 MB at 32 px: evaluations encode every view of every object
def _cached_render(data: Factors3D, index: int, view: int) -> np.ndarray:
    return data.render_array(index, view)
