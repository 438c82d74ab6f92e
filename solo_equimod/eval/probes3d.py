"""SIE's probes on frozen features (facebookresearch/SIE eval_classification.py, eval_angle_prediction.py,
eval_color_prediction.py), each on the chosen parts of the representation:

- classification: one seeded random view per object, a linear head, Adam 1e-3, top-1 on val;
- rotation: concat[h_a, h_b] of two views -> MLP 2d -> 1024 -> 1024 -> 4 regressing quat(R_a^-1 R_b),
  MSE, Adam 1e-3, batch 256, pairs resampled each epoch; R^2 = 1 - SS_res / SS_tot on the validation
  objects, twice: `r2` with ONE scalar mean over all components and rows in SS_tot (SIE's and EquiCaps'
  r2_score), `r2_column_means` with each component's own mean (0 for predicting the mean);
- color: the same protocol for the floor and spot hue deltas (latent_b - latent_a at [3, 6], no wrap).

Features are computed once (the backbone is frozen and in eval mode, so they do not change).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from solo_equimod.data.views3d import GROUPS
from solo_equimod.eval.loading import load_for_eval
from solo_equimod.eval.objects import (
    EncodedObjects,
    ObjectsEvalConfig,
    encoded_split,
    parts_of,
    random_pairs,
    report_fields,
    report_files,
    save_report,
)

Target = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (latents a, latents b) -> regression targets
TARGETS: dict[str, Target] = {
    "rotation": GROUPS["rot"].element,
    "color": lambda a, b: (b[..., [3, 6]] - a[..., [3, 6]]).astype(np.float32),
}


def r2_scalar(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """1 - SS_res / SS_tot, SS_tot around one scalar mean of all entries (SIE's r2_score)."""
    y_true, y_pred = y_true.double(), y_pred.double()
    return float(1 - ((y_true - y_pred) ** 2).sum() / ((y_true - y_true.mean()) ** 2).sum())


def r2_column_means(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """1 - SS_res / SS_tot, SS_tot around each component's (column's) own mean: predicting the mean scores 0."""
    y_true, y_pred = y_true.double(), y_pred.double()
    return float(1 - ((y_true - y_pred) ** 2).sum() / ((y_true - y_true.mean(0)) ** 2).sum())


def r2_scores(y_true: torch.Tensor, y_pred: torch.Tensor) -> dict[str, float]:
    return {"r2": r2_scalar(y_true, y_pred), "r2_column_means": r2_column_means(y_true, y_pred)}


def _fit(model: nn.Module, loss_fn: Callable, draw: Callable[[np.random.Generator], tuple], cfg: DictConfig) -> None:
    """Adam on mini-batches of `draw(rng)` (inputs, targets), resampled every epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    model.train()
    for _ in range(cfg.max_epochs):
        x, y = draw(rng)
        for idx in torch.randperm(len(x), generator=torch.Generator().manual_seed(int(rng.integers(2**31)))).split(
                cfg.batch_size):
            optimizer.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
    model.eval()


def classification_top1(train: EncodedObjects, val: EncodedObjects, part: slice, cfg: DictConfig) -> float:
    num_classes = int(max(train.targets.max(), val.targets.max())) + 1
    one_view = lambda e, rng: e.feats[torch.arange(len(e.feats)), rng.integers(e.feats.shape[1], size=len(e.feats))]  # noqa: E731
    head = nn.Linear(train.feats[..., part].shape[-1], num_classes)
    _fit(head, nn.functional.cross_entropy, lambda rng: (one_view(train, rng)[:, part], train.targets), cfg)
    with torch.no_grad():
        pred = head(one_view(val, np.random.default_rng(cfg.seed + 1))[:, part]).argmax(1)
    return float((pred == val.targets).float().mean() * 100)


def pair_inputs(enc: EncodedObjects, pairs: np.ndarray, part: slice, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
    """concat[h_a, h_b] of the chosen part and the target of each (object, a, b) row."""
    o, a, b = pairs.T
    x = torch.cat([enc.feats[o, a][:, part], enc.feats[o, b][:, part]], dim=1)
    return x, torch.from_numpy(target(enc.latents[o, a], enc.latents[o, b]))


def regression_r2(train: EncodedObjects, val: EncodedObjects, part: slice, target: Target,
                  cfg: DictConfig) -> dict[str, float]:
    """`r2_scores` of an MLP probe on concat[h_a, h_b] of the part, trained on resampled training pairs."""
    objects, views = train.feats.shape[:2]
    x_val, y_val = pair_inputs(val, random_pairs(np.random.default_rng(cfg.seed + 1), len(val.feats), views,
                                                 cfg.val_pairs), part, target)
    h = cfg.hidden_dim
    mlp = nn.Sequential(nn.Linear(x_val.shape[1], h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, y_val.shape[1]))
    _fit(mlp, nn.functional.mse_loss, lambda rng: pair_inputs(train, random_pairs(rng, objects, views), part, target), cfg)
    with torch.no_grad():
        return r2_scores(y_val, mlp(x_val))


def mean_predictor_r2(train: EncodedObjects, val: EncodedObjects, target: Target, cfg: DictConfig) -> dict[str, float]:
    """The `r2_scores` of predicting every pair's target by the training targets' per-component mean: with
    one scalar mean in SS_tot this is above 0 (the quaternion's w is near 1, its x, y, z near 0), the floor
    a probe must beat to show it reads the rotation; per component it is about 0."""
    views = train.feats.shape[1]
    rng = np.random.default_rng(cfg.seed)
    y_train = pair_inputs(train, random_pairs(rng, len(train.feats), views, cfg.val_pairs), slice(0), target)[1]
    y_val = pair_inputs(val, random_pairs(np.random.default_rng(cfg.seed + 1), len(val.feats), views, cfg.val_pairs),
                        slice(0), target)[1]
    return r2_scores(y_val, y_train.mean(0).expand_as(y_val))


def run_probe(kind: str, raw_cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """`kind` ("classification", "rotation", "color") on every requested part; writes
    `<kind>_<dataset>-<ckpt>.json` and a bar chart `.png` beside the checkpoint."""
    cfg, method = load_for_eval(raw_cfg, ObjectsEvalConfig)
    report_files(cfg, kind)
    parts = parts_of(method, cfg.parts)
    train, val = (encoded_split(cfg, method, s) for s in ("train", "val"))
    torch.manual_seed(cfg.seed)
    if kind == "classification":
        scores = {name: classification_top1(train, val, part, cfg) for name, part in parts.items()}
        metric, fields = "top1", {"majority_top1": float((val.targets == val.targets.mode().values).float().mean() * 100)}
    else:
        both = {name: regression_r2(train, val, part, TARGETS[kind], cfg) for name, part in parts.items()}
        scores = {name: r2["r2"] for name, r2 in both.items()}
        fields = {"r2_column_means": {name: r2["r2_column_means"] for name, r2 in both.items()},
                 "r2_of_component_means": mean_predictor_r2(train, val, TARGETS[kind], cfg)}
        metric = "r2"
    report = {**report_fields(cfg, method), "measure": kind, "metric": metric, "epochs": cfg.max_epochs, **fields,
              "num_train_objects": len(train.feats), "num_val_objects": len(val.feats), metric: scores}
    return save_report(cfg, method, kind, metric, scores, report)
