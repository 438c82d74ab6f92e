"""Datasets of 3D objects seen in many renderings with known latents (3DIEBench, Garrido et al.
ICML 2023, and its offline stand-in `factors3d`), and the SIE pretraining pairs built on them.

An `ObjectViews` split holds objects (one class each) with `num_views` renderings and a latent
vector per rendering: rotX, rotY, rotZ (extrinsic xyz Euler angles), floor_hue, spot_theta,
spot_phi, spot_hue. `ViewPairs` draws two distinct views of one object and returns them as a
`Batch` sample whose `params` are group elements relative to the FIRST view: `params[0]` is the
identity, `params[1]` takes view 1 to view 2 (quat(R1^-1 R2), plus latent deltas for `rotcolor`
and `all`; SIE src/dataset.py). Objectives read them through `param_spec` (`data/param_spec.py`).
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as F

from solo_equimod.data.images import CorruptImageError, header_size, read_rgb
from solo_equimod.data.rotations import relative_quat
from solo_equimod.errors import ConfigError

LATENT_NAMES: tuple[str, ...] = ("rot_x", "rot_y", "rot_z", "floor_hue", "spot_theta", "spot_phi", "spot_hue")
QUAT_NAMES: tuple[str, ...] = ("quat_x", "quat_y", "quat_z", "quat_w")
T = TypeVar("T")


@dataclass(frozen=True)
class GroupSpec:
    """What a view pair's group element holds: the relative quaternion, then deltas of the latents `deltas`."""

    deltas: tuple[int, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return QUAT_NAMES + tuple(f"{LATENT_NAMES[i]}_delta" for i in self.deltas)

    def element(self, latent_1: np.ndarray, latent_2: np.ndarray) -> np.ndarray:
        """Group element taking latent(s) `latent_1` to `latent_2` ((..., 7) each), float32."""
        quat = relative_quat(latent_1[..., :3], latent_2[..., :3])
        deltas = latent_2[..., list(self.deltas)] - latent_1[..., list(self.deltas)]
        return np.concatenate([quat, deltas], -1).astype(np.float32)


# `data.group`: SIE's experiences (main.py --experience SIE / SIERotColor / ..All): rotation only; plus
# the floor and spot hue deltas (latent2[[3, 6]] - latent1[[3, 6]]); plus all four extra deltas
GROUPS: dict[str, GroupSpec] = {"rot": GroupSpec(()), "rotcolor": GroupSpec((3, 6)), "all": GroupSpec((3, 4, 5, 6))}


def group_spec(name: str) -> GroupSpec:
    if name not in GROUPS:
        raise ValueError(f"data.group={name!r} is unknown; valid: {list(GROUPS)}")
    return GROUPS[name]


class ObjectViews(Dataset):
    """A split of objects; item i is `(transform(one rendering of object i), class)`, the rendering
    fixed per object (seeded by `view_seed`), for the online classifier and classification probes.
    Subclasses set `classes`, `targets`, `num_views`, `image_size` and implement `latents`, `image`.
    With `skip_corrupt`, an object whose rendering cannot be read is replaced by the next object
    with a warning naming the file, as `CheckedImageFolder` replaces a file (see `readable`)."""

    classes: list[str]
    targets: list[int]
    num_views: int
    image_size: int

    def __init__(self, transform: Callable | None = None, view_seed: int = 0, skip_corrupt: bool = False) -> None:
        self.transform, self.view_seed, self.skip_corrupt = transform, view_seed, skip_corrupt

    def latents(self, index: int) -> np.ndarray:
        """(num_views, 7) float64 latents of object `index`."""
        raise NotImplementedError  # abstract

    def image(self, index: int, view: int) -> Image.Image:
        """Rendering `view` of object `index` as a PIL RGB image."""
        raise NotImplementedError  # abstract

    def __len__(self) -> int:
        return len(self.targets)

    def fixed_view(self, index: int) -> int:
        return int(np.random.default_rng([self.view_seed, index]).integers(self.num_views))

    def readable(self, index: int, read: Callable[[int], T]) -> T:
        """`read(index)`, or with `skip_corrupt` `read` of the next object whose images it can read
        (a warning names each skipped file); without it, the CorruptImageError naming the file."""
        for offset in range(len(self)):
            try:
                return read((index + offset) % len(self))
            except CorruptImageError as err:
                if not self.skip_corrupt:
                    raise CorruptImageError(f"{err} (data.skip_corrupt=true skips such files with a warning)") from err
                warnings.warn(f"data.skip_corrupt: skipping {err}", stacklevel=2)
        raise CorruptImageError(f"no object with readable images among the {len(self)} objects")

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.readable(index, self._fixed_item)

    def _fixed_item(self, index: int) -> tuple[Any, int]:
        image = self.image(index, self.fixed_view(index))
        return (image if self.transform is None else self.transform(image)), self.targets[index]

    def raw_sizes(self, indices: Sequence[int]) -> list[tuple[int, int]]:
        return [(self.image_size, self.image_size)] * len(indices)


def view_tensor(image: Image.Image, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Resize(size) (shorter side, antialiased) + Normalize: SIE's only transform (main.py)."""
    tensor = F.pil_to_tensor(image.convert("RGB"))
    if min(tensor.shape[-2:]) != size:
        tensor = F.resize(tensor, [size], antialias=True)
    return F.normalize(F.to_dtype(tensor, torch.float32, scale=True), list(mean), list(std))


class ViewPairs(Dataset):
    """Two distinct random views of object i (drawn with torch's RNG, which Lightning seeds per
    worker) and their group elements relative to the first view: a `Batch` sample."""

    def __init__(self, objects: ObjectViews, group: GroupSpec, size: int, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        self.objects, self.group, self.size, self.mean, self.std = objects, group, size, mean, std

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.objects.readable(index, self._pair)

    def _pair(self, index: int) -> dict[str, Any]:
        first, second = (int(v) for v in torch.randperm(self.objects.num_views)[:2])
        latents = self.objects.latents(index)
        views = [view_tensor(self.objects.image(index, v), self.size, self.mean, self.std) for v in (first, second)]
        params = [torch.from_numpy(self.group.element(latents[first], latents[v])) for v in (first, second)]
        return {"index": index, "views": views, "params": params, "target": self.objects.targets[index],
                "image_size": torch.tensor([self.size, self.size]), "extras": {}}


def sample_group_elements(objects: ObjectViews, group: GroupSpec, count: int, seed: int) -> torch.Tensor:
    """`count` group elements of seeded random distinct view pairs (latents only, no pixels):
    the sample EquiMod's parameter normalisation is estimated on."""
    rng = np.random.default_rng(seed)
    index = rng.integers(len(objects), size=count)
    latents = {int(i): objects.latents(int(i)) for i in np.unique(index)}
    first = rng.integers(objects.num_views, size=count)
    second = (first + rng.integers(1, objects.num_views, size=count)) % objects.num_views  # != first
    lat = np.stack([latents[int(i)] for i in index])
    rows = np.arange(count)
    return torch.from_numpy(group.element(lat[rows, first], lat[rows, second]))


class FolderObjects(ObjectViews):
    """3DIEBench's published layout under `root`: `<split>_images.npy` lists '/<synset>/<object>/'
    entries, each folder holding `image_k.jpg` and `latent_k.npy` (7 values) for k < num_views;
    `all_latents_<split>.npy` ((objects x num_views, 7), object-major) is used when present. The
    class of an object is the index of its synset among the sorted synsets of the training split.

    The tree is checked when the split is built (before a run writes anything), from directory
    listings and .npy headers only: every object must hold every view's image (and latent file,
    when there is no `all_latents_<split>.npy`), each latent file must hold 7 values; a problem is a
    ConfigError naming the file. Images are read through `read_rgb`: an unreadable one is named, or
    skipped with a warning under `skip_corrupt` (another object is used)."""

    def __init__(self, root: str | Path, split: str, transform: Callable | None = None, view_seed: int = 0,
                 skip_corrupt: bool = False) -> None:
        super().__init__(transform, view_seed, skip_corrupt)
        self.root = Path(root).expanduser()
        entries = {s: self._entries(s) for s in dict.fromkeys(("train", split))}
        self.classes = sorted({e.split("/")[0] for e in entries["train"]})
        unknown = sorted({e.split("/")[0] for e in entries[split]} - set(self.classes))
        if unknown:
            raise ConfigError(f"{self.root / f'{split}_images.npy'}: synsets {unknown[:5]} are not in the training "
                              f"split {self.root / 'train_images.npy'}")
        self.objects = entries[split]
        self.targets = [self.classes.index(e.split("/")[0]) for e in self.objects]
        listings = self._listings(split)
        self._all = self._all_latents(split)
        self.num_views = self._all.shape[1] if self._all is not None else self._common_views(listings)
        self._check_views(listings, split)
        self.image_size = self._first_image_size()

    def _entries(self, split: str) -> list[str]:
        path = self.root / f"{split}_images.npy"
        if not path.is_file():
            raise ConfigError(f"3DIEBench split file {path} does not exist: point data.train_path at the folder "
                              f"holding train_images.npy, val_images.npy and the <synset>/ folders")
        values = load_plain_array(path, "a 1-d array of strings '/<synset>/<object_id>/'")
        if values.ndim != 1 or values.dtype.kind not in "US":
            raise ConfigError(f"{path} holds a {values.dtype} array of shape {values.shape}; expected a 1-d array of "
                              f"strings '/<synset>/<object_id>/'")
        entries = [str(e).strip("/") for e in values.tolist()]
        bad = [e for e in entries if e.count("/") != 1]
        if bad:
            raise ConfigError(f"{path}: entries must be '/<synset>/<object_id>/', got {bad[0]!r}")
        if not entries:
            raise ConfigError(f"{path} lists no objects")
        return entries

    def _listings(self, split: str) -> list[set[str]]:
        """The file names in each object's folder (one directory listing per object)."""
        listings = []
        for entry in self.objects:
            try:
                listings.append({item.name for item in os.scandir(self.root / entry)})
            except (FileNotFoundError, NotADirectoryError):
                raise ConfigError(f"{self.root / f'{split}_images.npy'} lists '/{entry}/', but {self.root / entry} is "
                                  f"not a folder: point data.train_path at the 3DIEBench root") from None
        return listings

    def _all_latents(self, split: str) -> np.ndarray | None:
        path = self.root / f"all_latents_{split}.npy"
        if not path.is_file():
            return None
        values = load_plain_array(path, f"(objects x views, {len(LATENT_NAMES)}) floats")
        n = len(self.objects)
        if values.ndim != 2 or values.shape[1] != len(LATENT_NAMES) or values.shape[0] % n or values.shape[0] < 2 * n \
                or values.dtype.kind not in "fiu":
            raise ConfigError(f"{path} holds a {values.dtype} array of shape {values.shape}; expected ({n} objects x "
                              f"views, {len(LATENT_NAMES)}) floats: {', '.join(LATENT_NAMES)}")
        return values.reshape(n, -1, len(LATENT_NAMES)).astype(np.float64)

    def _common_views(self, listings: list[set[str]]) -> int:
        """The number of views most objects have (the larger on a tie): objects with fewer are then named."""
        counts = Counter(sum(1 for name in names if _IMAGE_NAME.fullmatch(name)) for names in listings)
        views = max(counts, key=lambda c: (counts[c], c))
        if views < 2:
            raise ConfigError(f"{self.root / self.objects[0]} holds {views} image_k.jpg file(s); SIE needs >= 2 views "
                              f"of each object")
        return views

    def _check_views(self, listings: list[set[str]], split: str) -> None:
        """Every object holds image_k.jpg (and latent_k.npy without all_latents) for k < num_views; each
        latent file holds 7 values (its .npy header)."""
        source = f"all_latents_{split}.npy" if self._all is not None else "most objects"
        wanted = [f"image_{k}.jpg" for k in range(self.num_views)]
        if self._all is None:
            wanted += [f"latent_{k}.npy" for k in range(self.num_views)]
        short = [(entry, [w for w in wanted if w not in names]) for entry, names in zip(self.objects, listings)]
        short = [(entry, missing) for entry, missing in short if missing]
        if short:
            entry, missing = short[0]
            raise ConfigError(f"{self.root / entry / missing[0]} does not exist: each object needs image_k.jpg"
                              f"{'' if self._all is not None else ' and latent_k.npy'} for k < {self.num_views} "
                              f"({self.num_views} views, from {source}); {len(short)} object(s) of "
                              f"{split}_images.npy miss files ({len(missing)} in {entry})")
        if self._all is None:
            parsed: dict[bytes, tuple[tuple[int, ...], np.dtype]] = {}
            for entry in self.objects:
                for view in range(self.num_views):
                    check_latent_header(self.root / entry / f"latent_{view}.npy", parsed)

    def _first_image_size(self) -> int:
        """The shorter side of the first readable view 0 (a header), the size SIE resizes from."""
        for index in range(len(self.objects)):
            size = header_size(str(self._image_path(index, 0)), self.skip_corrupt)
            if size is not None:
                return min(size)
        raise ConfigError(f"no readable image_0.jpg among the {len(self.objects)} objects under {self.root}")

    def _image_path(self, index: int, view: int) -> Path:
        return self.root / self.objects[index] / f"image_{view}.jpg"

    def latents(self, index: int) -> np.ndarray:
        if self._all is not None:
            return self._all[index]
        rows = []
        for view in range(self.num_views):
            path = self.root / self.objects[index] / f"latent_{view}.npy"
            value = load_plain_array(path, f"({len(LATENT_NAMES)},) floats")
            if value.shape != (len(LATENT_NAMES),):
                raise ConfigError(f"latent file {path} has shape {value.shape}; expected ({len(LATENT_NAMES)},): "
                                  f"{', '.join(LATENT_NAMES)}")
            rows.append(value.astype(np.float64))
        return np.stack(rows)

    def image(self, index: int, view: int) -> Image.Image:
        return read_rgb(str(self._image_path(index, view)))

    def raw_sizes(self, indices: Sequence[int]) -> list[tuple[int, int]]:
        """(height, width) of each object's fixed view from its header; unreadable files are named, or
        left out with a warning under `skip_corrupt`."""
        sizes = [header_size(str(self._image_path(i, self.fixed_view(i))), self.skip_corrupt) for i in indices]
        return [(height, width) for width, height in filter(None, sizes)]


_IMAGE_NAME = re.compile(r"image_\d+\.jpg")


def load_plain_array(path: Path, expected: str) -> np.ndarray:
    """`np.load(path, allow_pickle=False)`, a ConfigError naming the file if it is not a plain .npy array
    (a pickle, an object array, not .npy at all)."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; expected {expected}") from None
    except (ValueError, OSError, EOFError) as err:
        raise ConfigError(f"{path} is not a plain .npy array ({err}); expected {expected}, saved with numpy.save "
                          f"without Python objects") from None


def check_latent_header(path: Path, parsed: dict[bytes, tuple[tuple[int, ...], np.dtype]]) -> None:
    """A latent file's .npy header (not its data) says 7 numbers; else a ConfigError naming it.
    `parsed` caches headers by their bytes: the 2 M latent files of 3DIEBench share one header."""
    expected = f"({len(LATENT_NAMES)},) floats: {', '.join(LATENT_NAMES)}"
    try:
        with open(path, "rb") as f:
            head = f.read(_NPY_PREFIX + 4)
            if not head.startswith(b"\x93NUMPY") or len(head) < _NPY_PREFIX + 4:
                raise ValueError("no .npy magic string")
            start, size = (10, int.from_bytes(head[8:10], "little")) if head[6] == 1 else \
                (12, int.from_bytes(head[8:12], "little"))
            head += f.read(start + size - len(head))
        key = head[:start + size]
        if key not in parsed:
            buf = io.BytesIO(key)
            version = np.lib.format.read_magic(buf)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(buf)
            parsed[key] = shape, dtype
    except (ValueError, OSError, EOFError) as err:
        raise ConfigError(f"latent file {path} is not a .npy array ({err}); expected {expected}") from None
    shape, dtype = parsed[key]
    if shape != (len(LATENT_NAMES),) or dtype.kind not in "fiu":
        raise ConfigError(f"latent file {path} holds a {dtype} array of shape {shape}; expected {expected}")


_NPY_PREFIX = 8  # the magic string and the version bytes, before the header length
