"""The 3D factor bench at test scale: shipped configs composed small, and a tiny 3DIEBench-style tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.config.schema import validate
from tests.conftest import REPO


def three_objects(root: Path) -> Path:
    """A tree of 3 objects x 3 views, all views of object k readable, without all_latents."""
    rng = np.random.default_rng(2)
    return write_tree(root, {e: rng.uniform(-1, 1, (3, 7)) for e in ("s/a", "s/b", "t/c")})


def factors3d_cfg(config: str, tmp_path: Path, **overrides: object):
    """A shipped factors3d config, composed by Hydra, at test scale (tiny_cnn width 8, no workers)."""
    register_schemas()
    with initialize_config_dir(str(REPO / "scripts/pretrain/factors3d"), version_base="1.3"):
        cfg = compose(config_name=config, overrides=["backbone.kwargs.width=8", "data.num_workers=0",
                                                      f"checkpoint.dir={tmp_path}"])
    cfg = validate(cfg)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def write_tree(root: Path, latents: dict[str, np.ndarray], all_latents: bool = False) -> Path:
    """`<synset>/<object>/image_k.jpg` whose pixels are 20 * k (so the view is readable back) and latent_k.npy."""
    for entry, lat in latents.items():
        (root / entry).mkdir(parents=True)
        for k, row in enumerate(lat):
            Image.fromarray(np.full((8, 8, 3), 20 * k, np.uint8)).save(root / entry / f"image_{k}.jpg", quality=100)
            np.save(root / entry / f"latent_{k}.npy", row)
    np.save(root / "train_images.npy", np.array([f"/{e}/" for e in latents]))
    np.save(root / "val_images.npy", np.array([f"/{next(iter(latents))}/"]))
    if all_latents:
        np.save(root / "all_latents_train.npy", np.concatenate(list(latents.values())))
    return root
