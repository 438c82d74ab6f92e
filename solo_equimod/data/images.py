"""How every loader reads an image file: as 8-bit RGB with the same values, or refused by name.

PIL (torchvision loader) and DALI's decoder agree exactly on 8-bit images of every mode we accept
(RGB, RGBA, L, LA, 1, P with or without transparency, CMYK and YCbCr JPEGs: alpha is dropped, gray
is repeated over the channels). They disagree on 16- and 32-bit images (PIL clips, DALI rescales),
so those are refused in both, with the file's name, rather than read differently.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

from PIL import Image, UnidentifiedImageError
from torchvision.datasets import ImageFolder

from solo_equimod.errors import ConfigError

SUPPORTED_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr")
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError)  # what PIL raises on bad files


class CorruptImageError(ConfigError, RuntimeError):
    """An image file that cannot be read, decoded, or read the same way by every loader (named). A
    ConfigError, so commands report it in one line; still a RuntimeError for existing handlers."""


def mode_problem(image: Image.Image) -> str | None:
    """Why an opened image cannot be used (from its header), or None."""
    if image.mode in SUPPORTED_MODES:
        return None
    return (f"mode {image.mode!r} ({'16' if '16' in image.mode else '32'}-bit) is not supported: loaders disagree on "
            f"how to map it to 8 bits; convert the file to 8-bit (modes {', '.join(SUPPORTED_MODES)})")


def header_size(path: str, skip_corrupt: bool) -> tuple[int, int] | None:
    """(width, height) of an image file from its header (no pixels decoded); an unreadable or
    16/32-bit file is a CorruptImageError naming it, or None with a warning under `skip_corrupt`."""
    try:
        with Image.open(path) as image:
            size, problem = image.size, mode_problem(image)
    except DECODE_ERRORS as err:
        problem = f"not a readable image ({err.__class__.__name__}: {err})"
    if problem is None:
        return size
    if skip_corrupt:
        warnings.warn(f"data.skip_corrupt: skipping image file {path!r}: {problem}", stacklevel=2)
        return None
    raise CorruptImageError(f"image file {path!r}: {problem} (data.skip_corrupt=true skips such files with a warning)")


def read_rgb(path: str) -> Image.Image:
    """The file as an 8-bit RGB PIL image; CorruptImageError naming the file otherwise."""
    try:
        with Image.open(path) as image:
            problem = mode_problem(image)
            if problem is None:
                return image.convert("RGB")
    except DECODE_ERRORS as err:
        problem = f"not a readable image ({err.__class__.__name__}: {err})"
    raise CorruptImageError(f"image file {path!r}: {problem}")


class CheckedImageFolder(ImageFolder):
    """`ImageFolder` reading through `read_rgb`. With `skip_corrupt`, a file that cannot be read is
    replaced by the next readable file of the dataset, with a warning naming it (the batch keeps its
    size, the bad file is never trained on); otherwise the CorruptImageError stops the run."""

    def __init__(self, root: str, transform: Callable[[Any], Any] | None = None, skip_corrupt: bool = False) -> None:
        super().__init__(root, transform=transform, loader=read_rgb)
        self.skip_corrupt = skip_corrupt

    def __getitem__(self, index: int) -> tuple[Any, int]:
        for offset in range(len(self)):
            try:
                return super().__getitem__((index + offset) % len(self))
            except CorruptImageError as err:
                if not self.skip_corrupt:
                    raise CorruptImageError(f"{err} (data.skip_corrupt=true skips such files with a warning)") from err
                warnings.warn(f"data.skip_corrupt: skipping {err}", stacklevel=2)
        raise CorruptImageError(f"no readable image in {self.root}")
