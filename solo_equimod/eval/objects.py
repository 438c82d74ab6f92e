"""What SIE's evaluations share: a checkpoint's frozen backbone (BatchNorm in eval mode; the official
scripts leave the model in train mode, so their features depend on the batch) over every view of
every object of a split of a dataset of renderings (3diebench, factors3d), the named parts of the
representation (SIE: invariant, equivariant; any method: whole), and the seeded view pairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from omegaconf import DictConfig

from solo_equimod.config.choices import VIEW_DATASETS
from solo_equimod.config.schema import DataConfig
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.data.pretrain import build_split
from solo_equimod.data.views3d import ObjectViews, view_tensor
from solo_equimod.errors import ConfigError
from solo_equimod.eval.plots import bar_chart
from solo_equimod.eval.reports import method_label, report_path
from solo_equimod.methods import BaseMethod
from solo_equimod.run.atomic import refuse_existing, write_json


@dataclass
class ObjectsEvalConfig:
    pretrained_feature_extractor: str = "???"
    data: DataConfig = field(default_factory=DataConfig)  # unset keys: the checkpoint's pretraining data
    parts: Optional[list[str]] = None  # parts of the representation to probe; None: all the method has
    max_objects: Optional[int] = None  # the first N objects of each split (balanced for factors3d); None: all
    max_epochs: int = 300  # SIE eval scripts: 300 epochs
    lr: float = 1e-3  # Adam 1e-3
    batch_size: int = 256
    hidden_dim: int = 1024  # the regression MLPs: 2d -> 1024 -> 1024 -> out
    val_pairs: int = 10  # seeded view pairs per validation object for the R^2 measures
    seed: int = 0
    output_dir: Optional[str] = None  # default: the checkpoint's folder
    overwrite: bool = False  # replace existing report files (else refused before the evaluation runs)


@dataclass
class EncodedObjects:
    """Backbone features (objects, views, dim), latents (objects, views, 7) and classes of one split;
    `embedded`: the view predictor's embedding of each view (objects, views, d), taken while encoding
    when the method reads the pre-pool feature map (EquiCaps' poses), which is not kept."""

    feats: torch.Tensor
    latents: np.ndarray
    targets: torch.Tensor
    embedded: torch.Tensor | None = None


_ENCODED: dict[tuple[Any, ...], EncodedObjects] = {}  # one checkpoint's features, kept for its other measures


def encoded_split(cfg: DictConfig, method: BaseMethod, split: str) -> EncodedObjects:
    """`encode_objects` of a split of the evaluation data, computed once per process for a checkpoint
    file (path and modification time) and data, so a script running every measure encodes once."""
    if cfg.data.dataset not in VIEW_DATASETS:
        raise ConfigError(f"SIE's measures need a dataset of renderings (data.dataset one of {list(VIEW_DATASETS)}), "
                          f"got {cfg.data.dataset!r}")
    path = Path(cfg.pretrained_feature_extractor).resolve()
    if not path.is_file():  # an architecture at random init (timm:NAME): each load is another network
        return encode_objects(method, build_split(cfg, split, transform=None), cfg.max_objects)
    key = (str(path), path.stat().st_mtime_ns, str(cfg.data), split, cfg.max_objects)
    if key not in _ENCODED:
        if len(_ENCODED) >= 4:
            _ENCODED.pop(next(iter(_ENCODED)))
        _ENCODED[key] = encode_objects(method, build_split(cfg, split, transform=None), cfg.max_objects)
    return _ENCODED[key]


@torch.no_grad()
def encode_objects(method: BaseMethod, objects: ObjectViews, max_objects: int | None, batch: int = 256) -> EncodedObjects:
    """Every view of the first `max_objects` objects through the frozen backbone, in eval mode."""
    method.eval()
    count = len(objects) if max_objects is None else min(max_objects, len(objects))
    info = DATASET_INFO[method.cfg.data.dataset]
    size = int(method.cfg.augmentations[0].crop_size)
    keys = [(i, v) for i in range(count) for v in range(objects.num_views)]
    predictor = method.view_predictor if method.READS_FEATURE_MAPS else None
    feats, embedded = [], []
    for start in range(0, len(keys), batch):
        images = [view_tensor(objects.image(i, v), size, info.mean, info.std) for i, v in keys[start:start + batch]]
        feats.append(method.backbone(torch.stack(images)))
        if predictor is not None:
            embedded.append(predictor.embed(method.feature_map_tap.last))
    latents = np.stack([objects.latents(i) for i in range(count)])
    shape = (count, objects.num_views, -1)
    return EncodedObjects(torch.cat(feats).view(shape), latents, torch.tensor(objects.targets[:count]),
                          torch.cat(embedded).view(shape) if embedded else None)


def parts_of(method: BaseMethod, wanted: list[str] | None) -> dict[str, slice]:
    """The requested parts of the representation; an unknown one is an error naming the method's."""
    parts = method.representation_parts()
    unknown = sorted(set(wanted or []) - set(parts))
    if unknown:
        raise ConfigError(f"parts={unknown} are not parts of method {method.cfg.method!r}'s representation; "
                          f"valid: {list(parts)}")
    return {name: parts[name] for name in (wanted or parts)}


def random_pairs(rng: np.random.Generator, objects: int, views: int, per_object: int = 1) -> np.ndarray:
    """(objects * per_object, 3) rows of (object, view a, view b) with a != b."""
    obj = np.repeat(np.arange(objects), per_object)
    first = rng.integers(views, size=len(obj))
    second = (first + rng.integers(1, views, size=len(obj))) % views
    return np.stack([obj, first, second], 1)


def report_fields(cfg: DictConfig, method: BaseMethod) -> dict[str, Any]:
    return {"method": method_label(method), "checkpoint": str(Path(cfg.pretrained_feature_extractor)),
            "dataset": cfg.data.dataset, "group": method.cfg.data.get("group"), "max_objects": cfg.max_objects,
            "seed": cfg.seed, "backbone_mode": "eval (BatchNorm running statistics; the official scripts: train)"}


def report_files(cfg: DictConfig, kind: str) -> tuple[Path, Path]:
    """The report's JSON and PNG paths; a ConfigError if one exists, unless `overwrite=true` (call
    before the evaluation runs, so nothing is computed for a report that would be refused)."""
    path = report_path(cfg.pretrained_feature_extractor, kind, cfg.data.dataset, folder=cfg.output_dir)
    refuse_existing([path, path.with_suffix(".png")], cfg.overwrite, flag="overwrite=true")
    return path, path.with_suffix(".png")


def save_report(cfg: DictConfig, method: BaseMethod, kind: str, metric: str, scores: dict[str, float],
                report: dict[str, Any]) -> dict[str, Any]:
    """Writes `<kind>_<dataset>-<ckpt>.json` (in `cfg.output_dir`, default beside the checkpoint) and
    its bar chart `.png` of `scores`; returns the report."""
    path = report_path(cfg.pretrained_feature_extractor, kind, cfg.data.dataset, folder=cfg.output_dir)
    write_json(report, path)
    bar_chart(list(scores), {metric: list(scores.values())}, {}, 0.0, metric, f"{kind}: {method_label(method)}",
              path.with_suffix(".png"))
    return report
