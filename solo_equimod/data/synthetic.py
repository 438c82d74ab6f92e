"""SyntheticShapes: a file-free, deterministic, labelled image dataset with known factors.

Demos and tests must run anywhere without downloads, and equivariance is easiest to probe
when the true generating factors of each image are known. Every image is drawn lazily from
a random generator seeded by ``(seed, split, index)``, so item ``k`` is always the same.
"""

from __future__ import annotations

import colorsys
import functools
import math
import zlib
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw

# A shape is a list of layers (polygon in unit coordinates, paint value); later layers
# paint over earlier ones, so value 0 cuts holes.
Layer = tuple[np.ndarray, int]

FACTOR_NAMES: tuple[str, ...] = ("class", "rotation", "hue", "scale", "x", "y", "background")
SPLITS: tuple[str, ...] = ("train", "val", "test")

# Ranges of the uniformly drawn factors (see SyntheticShapes docstring).
ROTATION_RANGE = (0.0, 360.0)
HUE_RANGE = (0.0, 1.0)
SCALE_RANGE = (0.5, 1.0)
POSITION_RANGE = (0.35, 0.65)
BACKGROUND_RANGE = (0.1, 0.7)

_SUPERSAMPLE = 4  # draw the mask this many times larger, then box-filter: anti-aliasing
_BASE_RADIUS = 0.22  # radius of a scale-1 shape (of a disc's area), as a fraction of the image
_OBJECT_SATURATION, _OBJECT_VALUE = 0.8, 0.9
_TEXTURE_STD, _TEXTURE_GRID = 0.08, 4  # smooth background blotches
_NOISE_STD = 0.04  # per-pixel grey noise over the whole image


def _ngon(n: int, radius: float = 1.0, phase: float = 90.0) -> np.ndarray:
    angles = np.deg2rad(phase + 360.0 * np.arange(n) / n)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def _star(points: int = 5, inner: float = 0.4) -> np.ndarray:
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return _ngon(2 * points) * radii[:, None]


def _stripes(bands: int = 5) -> list[Layer]:
    edges = np.linspace(-1.0, 1.0, bands + 1)
    return [(_rect(-1.0, edges[i], 1.0, edges[i + 1]), 255) for i in range(0, bands, 2)]


def _checker(cells: int = 3) -> list[Layer]:
    edges = np.linspace(-1.0, 1.0, cells + 1)
    return [
        (_rect(edges[i], edges[j], edges[i + 1], edges[j + 1]), 255)
        for i in range(cells)
        for j in range(cells)
        if (i + j) % 2 == 0
    ]


# The class vocabulary, in label order. Sizes are equalised by area below, so neither the
# mean pixel nor the object's pixel count tells the classes apart.
SHAPES: dict[str, list[Layer]] = {
    "disc": [(_ngon(32), 255)],
    "square": [(_rect(-1, -1, 1, 1), 255)],
    "triangle": [(_ngon(3), 255)],
    "cross": [(_rect(-1, -0.33, 1, 0.33), 255), (_rect(-0.33, -1, 0.33, 1), 255)],
    "ring": [(_ngon(32), 255), (_ngon(32, 0.6), 0)],
    "star": [(_star(), 255)],
    "frame": [(_rect(-1, -1, 1, 1), 255), (_rect(-0.6, -0.6, 0.6, 0.6), 0)],
    "crescent": [(_ngon(32), 255), (_ngon(32, 0.85) + [0.45, 0.0], 0)],
    "stripes": _stripes(),
    "checker": _checker(),
}
CLASS_NAMES: tuple[str, ...] = tuple(SHAPES)


def _paint(layers: list[Layer], size: int, centre: tuple[float, float], radius: float,
           rotation: float) -> Image.Image:
    """Rasterise ``layers`` into an 'L' mask: unit coordinates -> rotated, scaled, moved."""
    theta = math.radians(rotation)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    for polygon, value in layers:
        points = polygon @ rot.T * radius + centre
        draw.polygon([tuple(p) for p in points.tolist()], fill=value)
    return mask


@functools.cache
def _normalised_shape(name: str) -> list[Layer]:
    """The shape moved so its area centroid is the origin and rescaled to a unit disc's area.

    Measured once on a large raster, so position means "centroid of the object" and every
    class covers the same number of pixels at the same scale.
    """
    size, radius = 512, 128.0
    mask = np.asarray(_paint(SHAPES[name], size, (size / 2, size / 2), radius, 0.0), float)
    weight = mask / 255.0
    area = weight.sum() / radius**2
    ys, xs = np.indices(mask.shape)
    centroid = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
    offset = (centroid + 0.5 - size / 2) / radius  # +0.5: PIL pixel (i, j) spans [i, i+1)
    factor = math.sqrt(math.pi / area)
    return [((polygon - offset) * factor, value) for polygon, value in SHAPES[name]]


class SyntheticShapes(torch.utils.data.Dataset):
    """Procedurally generated coloured shapes on a textured grey background.

    Item ``index`` is ``(PIL RGB image of image_size x image_size, label)`` with label
    ``index % num_classes`` (so any prefix is balanced). The label picks a shape from
    ``CLASS_NAMES`` (disc, square, triangle, cross, ring, star, frame, crescent, stripes,
    checker); ``num_classes`` uses the first ones. Each image has generating factors drawn
    uniformly and independently of the class, returned by ``factors(index)``:

    - ``class``: the label, as a float.
    - ``rotation``: degrees in [0, 360) about the object's centroid, clockwise on screen
      (from +x towards +y, with y pointing down).
    - ``hue``: hue of the object's colour in [0, 1) (HSV, saturation 0.8, value 0.9).
    - ``scale``: relative size in [0.5, 1]; at scale 1 the object covers the area of a disc of
      radius 0.22 * image_size (every class has the same area at the same scale, up to a few
      percent from rasterising edges).
    - ``x``, ``y``: the object's area centroid as fractions of width and height, in
      [0.35, 0.65] (pixel coordinates ``x * image_size``, ``y * image_size``).
    - ``background``: mean grey level of the background in [0.1, 0.7].

    The background is grey with smooth random blotches, and grey pixel noise covers the whole
    image; both are grey, so the object's hue is exact and its saturation separates it from
    the background. Rendering takes well under a millisecond at 32 px. ``transform``, if
    given, is applied to the image (like torchvision datasets' ``transform``).
    """

    FACTOR_NAMES = FACTOR_NAMES

    def __init__(self, num_samples: int, image_size: int = 32, num_classes: int = 10,
                 split: str = "train", seed: int = 0, transform: Callable | None = None) -> None:
        if num_samples < 0:
            raise ValueError(f"SyntheticShapes: num_samples must be >= 0, got {num_samples}")
        if image_size < 8:
            raise ValueError(f"SyntheticShapes: image_size must be >= 8, got {image_size}")
        if not 1 <= num_classes <= len(CLASS_NAMES):
            raise ValueError(
                f"SyntheticShapes: num_classes must be in 1..{len(CLASS_NAMES)}, got {num_classes}"
            )
        if split not in SPLITS:
            raise ValueError(f"SyntheticShapes: split must be one of {SPLITS}, got {split!r}")
        self.num_samples = num_samples
        self.image_size = image_size
        self.num_classes = num_classes
        self.split = split
        self.seed = seed
        self.transform = transform
        self.classes = list(CLASS_NAMES[:num_classes])
        self._split_code = zlib.crc32(split.encode())

    def __len__(self) -> int:
        return self.num_samples

    def _draw_factors(self, index: int) -> tuple[dict[str, float], np.random.Generator]:
        """The factors of item ``index`` and the generator, positioned for the textures."""
        if not 0 <= index < self.num_samples:
            raise IndexError(f"SyntheticShapes: index {index} out of range 0..{self.num_samples - 1}")
        rng = np.random.default_rng([self.seed, self._split_code, index])
        factors = {
            "class": float(index % self.num_classes),
            "rotation": rng.uniform(*ROTATION_RANGE),
            "hue": rng.uniform(*HUE_RANGE),
            "scale": rng.uniform(*SCALE_RANGE),
            "x": rng.uniform(*POSITION_RANGE),
            "y": rng.uniform(*POSITION_RANGE),
            "background": rng.uniform(*BACKGROUND_RANGE),
        }
        return factors, rng

    def factors(self, index: int) -> dict[str, float]:
        """The generating factors of item ``index``, keyed by ``FACTOR_NAMES``."""
        return self._draw_factors(index)[0]

    def __getitem__(self, index: int) -> tuple[object, int]:
        image, label = self.render(index)
        return (image if self.transform is None else self.transform(image)), label

    def render(self, index: int) -> tuple[Image.Image, int]:
        """Item ``index`` before ``transform``: the PIL image and its label."""
        f, rng = self._draw_factors(index)
        size = self.image_size
        big = size * _SUPERSAMPLE
        layers = _normalised_shape(CLASS_NAMES[int(f["class"])])
        radius = _BASE_RADIUS * f["scale"] * big
        mask = _paint(layers, big, (f["x"] * big, f["y"] * big), radius, f["rotation"])
        alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), np.float32)[..., None] / 255.0

        grid = rng.normal(0.0, _TEXTURE_STD, (_TEXTURE_GRID, _TEXTURE_GRID)).astype(np.float32)
        texture = np.asarray(Image.fromarray(grid, "F").resize((size, size), Image.Resampling.BILINEAR))
        background = (f["background"] + texture)[..., None]
        colour = np.array(colorsys.hsv_to_rgb(f["hue"], _OBJECT_SATURATION, _OBJECT_VALUE), np.float32)
        noise = rng.normal(0.0, _NOISE_STD, (size, size, 1)).astype(np.float32)
        pixels = (1.0 - alpha) * background + alpha * colour + noise
        image = np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(image, "RGB"), int(f["class"])
