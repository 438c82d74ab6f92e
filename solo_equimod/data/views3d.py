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

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as F

from solo_equimod.data.rotations import relative_quat

LATENT_NAMES: tuple[str, ...] = ("rot_x", "rot_y", "rot_z", "floor_hue", "spot_theta", "spot_phi", "spot_hue")
QUAT_NAMES: tuple[str, ...] = ("quat_x", "quat_y", "quat_z", "quat_w")


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
    Subclasses set `classes`, `targets`, `num_views`, `image_size` and implement `latents`, `image`."""

    classes: list[str]
    targets: list[int]
    num_views: int
    image_size: int

    def __init__(self, transform: Callable | None = None, view_seed: int = 0) -> None:
        self.transform, self.view_seed = transform, view_seed

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

    def __getitem__(self, index: int) -> tuple[Any, int]:
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
    class of an object is the index of its synset among the sorted synsets of the training split."""

    def __init__(self, root: str | Path, split: str, transform: Callable | None = None, view_seed: int = 0) -> None:
        super().__init__(transform, view_seed)
        self.root = Path(root).expanduser()
        entries = {s: self._entries(s) for s in dict.fromkeys(("train", split))}
        self.classes = sorted({e.split("/")[0] for e in entries["train"]})
        unknown = sorted({e.split("/")[0] for e in entries[split]} - set(self.classes))
        if unknown:
            raise ValueError(f"{self.root / f'{split}_images.npy'}: synsets {unknown[:5]} are not in the training split")
        self.objects = entries[split]
        self.targets = [self.classes.index(e.split("/")[0]) for e in self.objects]
        for entry in self.objects:
            if not (self.root / entry).is_dir():
                raise FileNotFoundError(f"{self.root / f'{split}_images.npy'} lists '/{entry}/', but {self.root / entry} "
                                        f"is not a folder: point data.train_path at the 3DIEBench root")
        self._all = self._all_latents(split)
        self.num_views = self._all.shape[1] if self._all is not None else self._count_views()
        with Image.open(self._image_path(0, 0)) as first:
            self.image_size = min(first.size)

    def _entries(self, split: str) -> list[str]:
        path = self.root / f"{split}_images.npy"
        if not path.is_file():
            raise FileNotFoundError(f"3DIEBench split file {path} does not exist: point data.train_path at the "
                                    f"folder holding train_images.npy, val_images.npy and the <synset>/ folders")
        entries = [str(e).strip("/") for e in np.load(path, allow_pickle=False).tolist()]
        bad = [e for e in entries if e.count("/") != 1]
        if bad:
            raise ValueError(f"{path}: entries must be '/<synset>/<object_id>/', got {bad[0]!r}")
        return entries

    def _all_latents(self, split: str) -> np.ndarray | None:
        path = self.root / f"all_latents_{split}.npy"
        if not path.is_file():
            return None
        values = np.load(path, allow_pickle=False)
        n = len(self.objects)
        if values.ndim != 2 or values.shape[1] != len(LATENT_NAMES) or values.shape[0] % max(n, 1):
            raise ValueError(f"{path} has shape {values.shape}; expected ({n} objects x views, {len(LATENT_NAMES)})")
        return values.reshape(n, -1, len(LATENT_NAMES)).astype(np.float64)

    def _count_views(self) -> int:
        count = len(list((self.root / self.objects[0]).glob("image_*.jpg")))
        if count < 2:
            raise FileNotFoundError(f"{self.root / self.objects[0]} holds {count} image_k.jpg files; SIE needs >= 2 views")
        return count

    def _image_path(self, index: int, view: int) -> Path:
        return self.root / self.objects[index] / f"image_{view}.jpg"

    def latents(self, index: int) -> np.ndarray:
        if self._all is not None:
            return self._all[index]
        rows = []
        for view in range(self.num_views):
            path = self.root / self.objects[index] / f"latent_{view}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"latent file {path} does not exist")
            value = np.load(path, allow_pickle=False)
            if value.shape != (len(LATENT_NAMES),):
                raise ValueError(f"latent file {path} has shape {value.shape}; expected ({len(LATENT_NAMES)},): "
                                 f"{', '.join(LATENT_NAMES)}")
            rows.append(value.astype(np.float64))
        return np.stack(rows)

    def image(self, index: int, view: int) -> Image.Image:
        path = self._image_path(index, view)
        if not path.is_file():
            raise FileNotFoundError(f"image file {path} does not exist")
        with Image.open(path) as image:
            return image.convert("RGB")
