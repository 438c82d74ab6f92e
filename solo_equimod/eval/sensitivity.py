"""Augmentation sensitivity of any method's backbone, baselines included.

Two questions per augmentation of the pretraining policy:
- how far does it move the representation: 1 - cos(h(x), h(t(x))) with h the frozen backbone,
  measured with that augmentation alone (as the equivariance measures, `augmentation_views.py`);
- can its parameters be recovered: a ridge-regression probe from concat[h(x), h(t(x))] (views of
  the full policy) to the standardised Appendix A.1 parameters, fit on one split and scored on
  another, R^2 per parameter group (`AugmentationLayout.groups()`).

An invariant representation (SimCLR's aim) moves little and hides its parameters (R^2 near 0);
EquiMod's claim is that it keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from omegaconf import DictConfig
from torch.nn import functional as F

from solo_equimod.augment import layout_for, policies_from_config
from solo_equimod.eval.displacement import summarize
from solo_equimod.eval.encoded_views import ViewsConfig, encode_views, view_loader
from solo_equimod.eval.loading import load_for_eval
from solo_equimod.eval.reports import method_label, report_path
from solo_equimod.run.atomic import refuse_existing, write_json

RIDGE_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


@dataclass
class SensitivityConfig(ViewsConfig):
    probe_split: str = "train"  # the probe is fit here and scored on `split`
    ridge: Optional[float] = None  # L2 penalty of the probe; None: chosen from RIDGE_GRID on held-out fit data


def representation_shift(h_orig: torch.Tensor, h_view: torch.Tensor) -> torch.Tensor:
    """1 - cos(h(x), h(t(x))) per row."""
    return 1 - F.cosine_similarity(h_orig, h_view, dim=1)


def fit_ridge(x: torch.Tensor, y: torch.Tensor, ridge: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Closed-form ridge regression with an unpenalised intercept on standardised inputs:
    W = (Xs^T Xs + ridge I)^-1 Xs^T (Y - mean Y). Returns (x_mean, x_std, W) with the intercept
    folded into row 0 of W (the mean of Y)."""
    x64, y64 = x.double(), y.double()
    x_mean, x_std = x64.mean(0), x64.std(0).clamp_min(1e-8)
    xs = (x64 - x_mean) / x_std
    gram = xs.T @ xs + ridge * torch.eye(xs.shape[1], dtype=torch.float64)
    weights = torch.linalg.solve(gram, xs.T @ (y64 - y64.mean(0)))
    return x_mean, x_std, torch.cat([y64.mean(0, keepdim=True), weights])


def predict_ridge(model: tuple[torch.Tensor, torch.Tensor, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    x_mean, x_std, w = model
    return w[0] + ((x.double() - x_mean) / x_std) @ w[1:]


def r2_per_component(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """Coefficient of determination 1 - SSE/SST per column; NaN for a constant column."""
    y_true, y_pred = y_true.double(), y_pred.double()
    sst = ((y_true - y_true.mean(0)) ** 2).sum(0)
    sse = ((y_true - y_pred) ** 2).sum(0)
    return torch.where(sst > 1e-12, 1 - sse / sst.clamp_min(1e-12), torch.full_like(sst, float("nan")))


def probe_r2(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
             groups: dict[str, list[int]], ridge: float) -> dict[str, float]:
    """Fit the probe on (train_x, standardised train_y), score on test; mean R^2 of each group's
    non-constant components (NaN when all of a group's components are constant)."""
    y_mean, y_std = train_y.mean(0), train_y.std(0).clamp_min(1e-8)
    probe = fit_ridge(train_x, (train_y - y_mean) / y_std, ridge)
    r2 = r2_per_component((test_y - y_mean) / y_std, predict_ridge(probe, test_x))
    return {name: float(r2[idx].nanmean()) if (~r2[idx].isnan()).any() else float("nan")
            for name, idx in groups.items()}


def select_ridge(x: torch.Tensor, y: torch.Tensor, grid: Sequence[float] = RIDGE_GRID) -> float:
    """The penalty with the best mean R^2 when fit on the first 80% of (x, y) and scored on the rest."""
    cut = int(0.8 * x.shape[0])
    all_components = {"all": list(range(y.shape[1]))}
    scores = [probe_r2(x[:cut], y[:cut], x[cut:], y[cut:], all_components, r)["all"] for r in grid]
    return grid[max(range(len(grid)), key=lambda i: float("-inf") if scores[i] != scores[i] else scores[i])]


def run_sensitivity(raw_cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """Sensitivity report of any checkpoint: `sensitivity_<dataset>-<checkpoint stem>.json` next to it."""
    cfg, method = load_for_eval(raw_cfg, SensitivityConfig)
    output = report_path(cfg.pretrained_feature_extractor, "sensitivity", cfg.data.dataset, folder=cfg.output_dir)
    refuse_existing([output], cfg.overwrite, flag="overwrite=true")
    layout = layout_for(policies_from_config(method.cfg.augmentations))
    fit = encode_views(method.backbone, view_loader(cfg, method, cfg.probe_split), f"{cfg.probe_split} views")
    test = encode_views(method.backbone, view_loader(cfg, method, cfg.split), f"{cfg.split} views")
    shift = {aug: summarize(representation_shift(test.original, h)) for aug, h in test.views.items()}
    pair = lambda e: torch.cat([e.original, e.views["all"]], dim=1)  # noqa: E731
    ridge = cfg.ridge if cfg.ridge is not None else select_ridge(pair(fit), fit.params["all"])
    r2 = probe_r2(pair(fit), fit.params["all"], pair(test), test.params["all"], layout.groups(), ridge)
    ckpt = Path(cfg.pretrained_feature_extractor)
    report = {"method": method_label(method), "checkpoint": str(ckpt), "dataset": cfg.data.dataset,
              "probe_split": cfg.probe_split, "split": cfg.split, "num_fit": fit.original.shape[0],
              "num_test": test.original.shape[0], "ridge": ridge, "seed": cfg.seed,
              "representation_shift": shift, "probe_r2": r2}
    write_json(report, output)
    return report
