"""Load a pretraining checkpoint back into its method (config, weights, EquiMod statistics)."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from solo_equimod.methods import METHODS, BaseMethod


def load_method(path: str | Path, map_location: str = "cpu") -> BaseMethod:
    """Rebuild the method a checkpoint was trained with, from the resolved config it carries."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ValueError(f"checkpoint {path} could not be read ({err.__class__.__name__}: {err})") from err
    cfg = (ckpt.get("hyper_parameters") or {}).get("cfg") if isinstance(ckpt, dict) else None
    if cfg is None or "state_dict" not in ckpt:
        raise ValueError(f"{path} is not a solo-equimod pretraining checkpoint (no 'cfg' hyper-parameters or state_dict)")
    method = cfg.get("method")
    if method not in METHODS:
        raise ValueError(f"{path} was trained with method {method!r}, which this version does not know")
    model = METHODS[method](OmegaConf.create(cfg))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def save_method(model: BaseMethod, path: str | Path) -> Path:
    """Slim checkpoint (config + weights + EquiMod statistics, no optimiser state) that
    `load_method` reads; written atomically so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"hyper_parameters": {"cfg": OmegaConf.to_container(model.cfg, resolve=True)},
                "state_dict": model.state_dict()}, tmp)
    tmp.replace(path)
    return path
