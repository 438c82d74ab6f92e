"""The factor bench written to disk in 3DIEBench's layout, for `data.dataset: 3diebench`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from solo_equimod.data.factors3d.dataset import IMAGE_SIZE, NUM_VIEWS, OBJECTS_PER_CLASS, Factors3D
from solo_equimod.data.factors3d.render import SHAPES
from solo_equimod.errors import ConfigError


def write_layout(out_dir: str | Path, objects_per_class: dict[str, int] | None = None, num_views: int = NUM_VIEWS,
                 image_size: int = IMAGE_SIZE, seed: int = 0, overwrite: bool = False) -> Path:
    """The factor bench in 3DIEBench's layout under `out_dir` (see the `solo_equimod.data.factors3d`
    docstring). `out_dir` must be new or empty unless `overwrite`: files of the same names (a real
    3DIEBench's split files) would be replaced, so a ConfigError is raised before anything is written."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; the factor bench is written into a folder (new or empty)")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        shown = ", ".join(sorted(p.name for p in out.iterdir())[:3])
        raise ConfigError(f"{out} is not empty (holds {shown}, ...); refusing to write the factor bench over files it "
                          f"did not create: choose a new or empty folder, or pass --overwrite")
    for split, per_class in (objects_per_class or OBJECTS_PER_CLASS).items():
        data = Factors3D(split, len(SHAPES) * per_class, num_views, image_size, seed)
        entries, all_latents = [], []
        for i in range(len(data)):
            entry = f"{SHAPES[data.targets[i]]}/{data.object_name(i)}"
            (out / entry).mkdir(parents=True, exist_ok=True)
            latents = data.latents(i)
            for view in range(num_views):
                data.image(i, view).save(out / entry / f"image_{view}.jpg", quality=95, subsampling=0)
                np.save(out / entry / f"latent_{view}.npy", latents[view])
            entries.append(f"/{entry}/")
            all_latents.append(latents)
        np.save(out / f"{split}_images.npy", np.array(entries))
        np.save(out / f"all_latents_{split}.npy", np.concatenate(all_latents))
    return out
