"""A ready model from a zoo name or a checkpoint path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from torch import nn

from solo_equimod.errors import ConfigError
from solo_equimod.methods import BaseMethod
from solo_equimod.objectives import PredictsViews
from solo_equimod.run.checkpoints import load_method
from solo_equimod.zoo.fetch import fetch
from solo_equimod.zoo.manifest import load_manifest


@dataclass
class Pretrained:
    """The parts of a pretrained method, in eval mode and fp32.

    `objectives` are the trained objectives by name (their heads and buffers); `predictor` is the
    one that predicts views' embeddings, if any (EquiMod: `predictor.predict(predictor.embed(h_original),
    raw_params)`, with its parameter normalisation inside)."""

    backbone: nn.Module
    features_dim: int
    cfg: dict[str, Any]
    method: BaseMethod
    objectives: dict[str, nn.Module]
    predictor: Optional[PredictsViews]
    path: Path


def resolve(name_or_path: str | Path, cache: str | Path | None = None, manifest: str | Path | None = None) -> Path:
    """A local checkpoint file: an existing path as is, else the zoo entry of that name, fetched."""
    if Path(name_or_path).is_file():
        return Path(name_or_path)
    entries = load_manifest(manifest)
    entry = entries.get(str(name_or_path))
    if entry is None:
        raise ConfigError(f"{name_or_path!r} is neither a checkpoint file nor a zoo name; zoo names: "
                          f"{', '.join(sorted(entries)) or 'none'}")
    suffix = Path(entry.url).suffix or ".pt"  # a safetensors export keeps its name, which says how to read it
    return fetch(entry.url, entry.sha256, entry.size, f"{entry.name}{suffix}", cache, entry.base_dir)


def load_pretrained(name_or_path: str | Path, cache: str | Path | None = None,
                    manifest: str | Path | None = None) -> Pretrained:
    """Load a zoo model (downloaded and verified into the cache on first use) or a checkpoint file
    (full Lightning or slim, fp16 weights are restored to fp32)."""
    path = resolve(name_or_path, cache, manifest)
    method = load_method(path).float()
    return Pretrained(backbone=method.backbone, features_dim=method.features_dim,
                      cfg=dict(method.hparams["cfg"]), method=method, objectives=dict(method.objectives.items()),
                      predictor=method.view_predictor, path=path)
