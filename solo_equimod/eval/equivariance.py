"""The equivariance report of a checkpoint (EquiMod paper Sec. 3.2.2, Eq. 5 and 6; Figures 3 and 4):
the displacement measures (`displacement.py`) of each augmentation alone and of the full policy as
trained (`augmentation_views.py`), averaged over a split, as JSON, CSV and two bar charts.

A predictor that reads the transformation off an example instead of parameters (STL) gets, per image,
an example: the next image of the measured split, resized to the image's size, under the same
parameters; zhat'_i is then predicted from the original and the example's pair (`PredictsViewsFromExample`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from solo_equimod.errors import ConfigError
from solo_equimod.eval.augmentation_views import AUGMENTATION_LABELS
from solo_equimod.eval.displacement import absolute_displacement, relative_displacement, summarize
from solo_equimod.eval.encoded_views import EncodedViews, ViewsConfig, encode_views, view_loader
from solo_equimod.eval.loading import load_for_eval
from solo_equimod.eval.plots import displacement_chart
from solo_equimod.eval.reports import method_label, report_path
from solo_equimod.methods import BaseMethod
from solo_equimod.objectives import OBJECTIVES, PredictsViews, PredictsViewsFromExample
from solo_equimod.run.atomic import refuse_existing, write_csv, write_json


@torch.no_grad()
def equivariance_measures(predictor: PredictsViews | PredictsViewsFromExample,
                          encoded: EncodedViews) -> dict[str, dict[str, dict[str, float]]]:
    """Eq. 5 and Eq. 6 per augmentation: {aug: {"absolute": summary, "relative": summary}}, with the
    embedding and predictor of a view-predicting objective (in eval mode): from the parameters (EquiMod)
    or from the example under the same parameters (STL; `encoded` must hold the examples)."""
    z_orig = predictor.embed(encoded.original)
    out = {}
    for aug, h_view in encoded.views.items():
        z_view = predictor.embed(h_view)
        if isinstance(predictor, PredictsViews):
            z_pred = predictor.predict(z_orig, encoded.params[aug])
        else:
            if encoded.example_original is None or encoded.example_views is None:
                raise ValueError("a predictor from examples needs views encoded with their examples")
            z_pred = predictor.predict_from_example(encoded.original, encoded.example_original,
                                                    encoded.example_views[aug])
        out[aug] = {"absolute": summarize(absolute_displacement(z_view, z_pred, z_orig)),
                    "relative": summarize(relative_displacement(z_view, z_pred, z_orig))}
    return out


def require_view_predictor(method: BaseMethod, path: str) -> None:
    """A clear error when no objective of the checkpoint predicts views: say which measures do apply."""
    if method.view_predictor is None and method.example_predictor is None:
        able = sorted(name for name, cls in OBJECTIVES.items()
                      if issubclass(cls, (PredictsViews, PredictsViewsFromExample)))
        trained = ", ".join([method.cfg.method, *method.objectives]) or method.cfg.method
        raise ConfigError(
            f"checkpoint {path} was trained with {trained}, which has no objective with an embedding head and a "
            f"predictor of views (e.g. EquiMod's g' and u), so the equivariance measures (Eq. 5, 6) do not apply; "
            f"they need one of the objectives {able} (e.g. +objectives.{able[0]}.weight=1.0). For this checkpoint "
            f"use `python -m solo_equimod.eval sensitivity` (how much each augmentation moves the representation, "
            f"R^2 of parameter probes), `knn` or `linear`.")


def run_equivariance(raw_cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """The equivariance report of a checkpoint with a view-predicting objective (EquiMod): JSON + CSV
    table and two PNG bar charts (`equivariance_<dataset>-<checkpoint stem>_{absolute,relative}.png`)
    next to the checkpoint."""
    cfg, method = load_for_eval(raw_cfg, ViewsConfig)
    require_view_predictor(method, cfg.pretrained_feature_extractor)
    ckpt = Path(cfg.pretrained_feature_extractor)
    stem = report_path(ckpt, "equivariance", cfg.data.dataset, "", cfg.output_dir)
    outputs = {name: stem.with_name(stem.name + name) for name in (".json", ".csv", "_absolute.png", "_relative.png")}
    refuse_existing(list(outputs.values()), cfg.overwrite, flag="overwrite=true")
    encoded = encode_views(method.backbone, view_loader(cfg, method, cfg.split), f"{cfg.split} views")
    results = equivariance_measures(method.view_predictor or method.example_predictor, encoded)  # type: ignore[arg-type]
    title = f"{method_label(method)} on {cfg.data.dataset} ({cfg.split}, n={encoded.original.shape[0]})"
    labelled = {AUGMENTATION_LABELS[aug]: r for aug, r in results.items()}
    report = {"method": method_label(method), "checkpoint": str(ckpt), "dataset": cfg.data.dataset, "split": cfg.split,
              "num_images": encoded.original.shape[0], "seed": cfg.seed, "measures": results,
              "plots": [str(displacement_chart(labelled, m, title, outputs[f"_{m}.png"]))
                        for m in ("absolute", "relative")]}
    write_csv([{"augmentation": aug, "measure": m, **stats} for aug, r in results.items() for m, stats in r.items()],
              outputs[".csv"])
    write_json(report, outputs[".json"])
    return report
