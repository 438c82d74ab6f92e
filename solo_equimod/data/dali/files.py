"""The files DALI reads: an ImageFolder tree of JPEG/PNG files, checked from their headers (cheap),
and a full PIL decode to name the file behind a DALI decode failure."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from torchvision.datasets.folder import find_classes, make_dataset

from solo_equimod.data.images import DECODE_ERRORS, mode_problem

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def list_image_folder(root: str) -> tuple[list[str], list[int], list[str]]:
    """(files, targets, classes) of an ImageFolder tree of JPEG/PNG files, in torchvision's order."""
    classes, class_to_idx = find_classes(root)
    samples = make_dataset(root, class_to_idx, extensions=IMAGE_EXTENSIONS)
    return [path for path, _ in samples], [target for _, target in samples], classes


def check_image(path: str) -> tuple[np.ndarray | None, tuple[int, int], str]:
    """The file's bytes and (height, width) from its header, or None and why it is unusable."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        return None, (0, 0), f"cannot read: {err}"
    try:
        with Image.open(io.BytesIO(data.tobytes())) as image:  # header only, cheap
            (width, height), problem = image.size, mode_problem(image)
    except DECODE_ERRORS as err:
        return None, (0, 0), f"not a readable JPEG/PNG image: {err}"
    return (None, (0, 0), problem) if problem else (data, (height, width), "")


def decodes(path: str) -> bool:
    """Whether PIL can fully decode the file (used to name the culprit of a DALI decode failure)."""
    try:
        with Image.open(path) as img:
            img.convert("RGB").load()
        return True
    except DECODE_ERRORS:
        return False
