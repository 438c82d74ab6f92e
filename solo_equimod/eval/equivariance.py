"""Equivariance measures of EquiMod (paper Sec. 3.2.2, Eq. 5 and 6; Figures 3 and 4).

For an image x_o and an augmented view x_i = t(x_o), with z'_o = g'(f(x_o)), z'_i = g'(f(x_i)) and
the prediction zhat'_i = u(z'_o, t):

    absolute displacement (Eq. 5):  sim(z'_i, zhat'_i) - sim(z'_i, z'_o)
    relative displacement (Eq. 6):  (1 - sim(z'_i, z'_o)) / (1 - sim(z'_i, zhat'_i))

An invariant model (u the identity) gives 0 and 1; a model that predicts the displacement gives a
positive absolute value and a factor above 1. Each augmentation is measured alone (a random crop
with everything else off; or the full image with that one augmentation forced on with sampled
parameters), and the full policy as trained.

A predictor that reads the transformation off an example instead of parameters (STL) gets, per image,
an example: the next image of the measured split, resized to the image's size, under the same
parameters; zhat'_i is then predicted from the original and the example's pair (`PredictsViewsFromExample`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from solo_equimod.augment import ParamLayout, ViewPolicy, layout_for, policies_from_config
from solo_equimod.augment.apply import apply_view_params
from solo_equimod.augment.pipeline import OriginalView, to_uint8_tensor
from solo_equimod.augment.sampler import sample_view
from solo_equimod.config.schema import DataConfig
from solo_equimod.data.datasets import DATASET_INFO
from solo_equimod.data.pretrain import build_split, original_view
from solo_equimod.errors import ConfigError
from solo_equimod.eval.loading import load_for_eval
from solo_equimod.eval.plots import bar_chart
from solo_equimod.eval.reports import method_label, report_path
from solo_equimod.methods import BaseMethod
from solo_equimod.objectives import OBJECTIVES, PredictsViews, PredictsViewsFromExample
from solo_equimod.run.atomic import refuse_existing, write_csv, write_json

# Measured augmentations in the paper's order, with the names of its figures.
AUGMENTATION_LABELS = {"crop": "crop", "flip": "horizontal flip", "jitter": "color jitter", "gray": "grayscale",
                       "blur": "gaussian blur", "solarize": "solarize", "all": "all (policy)"}
_FORCE_ON = {"flip": "flip_prob", "jitter": "jitter_prob", "gray": "gray_prob", "blur": "blur_prob",
             "solarize": "solarize_prob"}


# ----- the measures on tensors ------------------------------------------------------------------
def absolute_displacement(z_view: torch.Tensor, z_pred: torch.Tensor, z_orig: torch.Tensor) -> torch.Tensor:
    """Eq. 5 per row: sim(z'_i, zhat'_i) - sim(z'_i, z'_o), sim the cosine similarity."""
    return F.cosine_similarity(z_view, z_pred, dim=1) - F.cosine_similarity(z_view, z_orig, dim=1)


def relative_displacement(z_view: torch.Tensor, z_pred: torch.Tensor, z_orig: torch.Tensor,
                          eps: float = 1e-6) -> torch.Tensor:
    """Eq. 6 per row: (1 - sim(z'_i, z'_o)) / (1 - sim(z'_i, zhat'_i)). Rows whose denominator is
    below `eps` (the prediction equals the view's embedding) are undefined and come back as NaN."""
    num = 1 - F.cosine_similarity(z_view, z_orig, dim=1)
    den = 1 - F.cosine_similarity(z_view, z_pred, dim=1)
    return torch.where(den > eps, num / den.clamp_min(eps), torch.full_like(den, float("nan")))


def summarize(values: torch.Tensor) -> dict[str, float]:
    """Mean, standard deviation, median and quartiles over the defined (non-NaN) values."""
    ok = values[~values.isnan()].double()
    if ok.numel() == 0:
        nan = float("nan")
        return {"mean": nan, "std": nan, "median": nan, "q25": nan, "q75": nan, "n": 0,
                "n_undefined": int(values.numel())}
    q = torch.quantile(ok, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return {"mean": float(ok.mean()), "std": float(ok.std()) if ok.numel() > 1 else 0.0, "median": float(q[1]),
            "q25": float(q[0]), "q75": float(q[2]), "n": int(ok.numel()),
            "n_undefined": int(values.numel() - ok.numel())}


# ----- views with one augmentation at a time ----------------------------------------------------
def _only(policy: ViewPolicy, augmentation: str) -> ViewPolicy:
    """`policy` with every augmentation off except `augmentation` (forced on; crop: random)."""
    probs = {name: 1.0 if aug == augmentation else 0.0 for aug, name in _FORCE_ON.items()}
    return dataclasses.replace(policy, **probs, rrc_enabled=augmentation == "crop")


def measured_policies(policies: list[ViewPolicy]) -> dict[str, list[ViewPolicy]]:
    """Per measured augmentation, the view policies that isolate it (only views whose policy can
    apply it keep their strengths), plus "all": the pretraining policies unchanged."""
    out: dict[str, list[ViewPolicy]] = {}
    for aug, prob in [("crop", None), *_FORCE_ON.items()]:
        able = [p for p in policies if (p.rrc_enabled if prob is None else getattr(p, prob) > 0)]
        if able:
            out[aug] = [_only(p, aug) for p in able]
    out["all"] = list(policies)
    return out


class AugmentationViews(Dataset):
    """Image -> {"original", "views": {augmentation: view}, "params": {augmentation: raw Appendix A.1
    vector}, "target"}. Views of the k-th image use the k-th policy of each list in turn. A view
    without a random crop shows the region the original shows (on ImageNet-size data, Resize(256) +
    CenterCrop(224)), so that e.g. "flip only" measures only the flip. `with_examples`: also
    "example_original" and "example_views", the next image (resized to this one's size, so that the
    same pixel crop applies) shown the same way under the same parameters."""

    def __init__(self, base: Dataset, policies: dict[str, list[ViewPolicy]], layout: ParamLayout,
                 mean: list[float], std: list[float], original: OriginalView, with_examples: bool = False) -> None:
        self.base, self.policies, self.layout = base, policies, layout
        self.mean, self.std, self.original = mean, std, original
        self.with_examples = with_examples

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def _normalize(self, image: torch.Tensor) -> torch.Tensor:
        return TF.normalize(TF.to_dtype(image, torch.float32, scale=True), self.mean, self.std)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, target = self.base[index]
        img = to_uint8_tensor(image)
        height, width = img.shape[-2:]
        example = None
        if self.with_examples:
            example = to_uint8_tensor(self.base[(index + 1) % len(self)][0])
            if example.shape[-2:] != img.shape[-2:]:
                example = TF.resize(example, [height, width], antialias=True)
        views, params, example_views = {}, {}, {}
        for aug, options in self.policies.items():
            policy = options[index % len(options)]
            p = sample_view(policy, height, width)
            if not policy.rrc_enabled:  # without a random crop, show what the original shows (and encode it)
                p = dataclasses.replace(p, crop=self.original.crop_box(height, width))
            views[aug] = self._normalize(apply_view_params(img, p, policy))
            params[aug] = self.layout.encode_tensor(p)
            if example is not None:
                example_views[aug] = self._normalize(apply_view_params(example, p, policy))
        item = {"original": self._normalize(self.original(img)), "views": views, "params": params, "target": int(target)}
        if example is not None:
            item |= {"example_original": self._normalize(self.original(example)), "example_views": example_views}
        return item


@dataclass
class ViewsConfig:
    """Shared by the equivariance and sensitivity commands."""

    pretrained_feature_extractor: str = "???"
    data: DataConfig = field(default_factory=DataConfig)  # unset keys: the checkpoint's pretraining data
    split: str = "val"  # images the measures are averaged over
    max_images: Optional[int] = None  # a seeded random subset of the split; None: all of it
    batch_size: int = 256
    num_workers: int = 2
    seed: int = 0
    output_dir: Optional[str] = None  # default: the checkpoint's folder
    overwrite: bool = False  # replace existing report files (else refused before the evaluation runs)


@dataclass
class EncodedViews:
    """Backbone features of originals and of each augmentation's views, with the raw parameters (and,
    for a predictor from examples, the examples' features: `AugmentationViews(with_examples=True)`)."""

    original: torch.Tensor
    views: dict[str, torch.Tensor]
    params: dict[str, torch.Tensor]
    example_original: torch.Tensor | None = None
    example_views: dict[str, torch.Tensor] | None = None


def view_loader(cfg: DictConfig, method: BaseMethod, split: str) -> DataLoader:
    """Seeded loader of `AugmentationViews` over `split`, for the policies `method` was trained with."""
    if cfg.max_images is not None and cfg.max_images < 1:
        raise ConfigError(f"max_images={cfg.max_images}: use a positive number of images, or null for all of them")
    base = build_split(cfg, split, None)
    if base is None:
        raise ConfigError(f"split {split!r} has no data: set data.{split}_path")
    generator = torch.Generator().manual_seed(cfg.seed)
    if cfg.max_images is not None and cfg.max_images < len(base):  # type: ignore[arg-type]
        base = Subset(base, torch.randperm(len(base), generator=generator)[:cfg.max_images].tolist())  # type: ignore[arg-type]
    policies = policies_from_config(method.cfg.augmentations)
    info = DATASET_INFO[cfg.data.dataset]
    dataset = AugmentationViews(base, measured_policies(policies), layout_for(policies), list(info.mean),
                                list(info.std), original_view(cfg), with_examples=method.example_predictor is not None)
    return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.num_workers,
                      generator=generator)


@torch.no_grad()
def encode_views(backbone: torch.nn.Module, loader: DataLoader, desc: str) -> EncodedViews:
    """h = f(x) of every original and view (eval mode), with a progress bar."""
    backbone.eval()
    torch.manual_seed(loader.generator.initial_seed() if loader.generator else 0)  # seeds the views' draws
    orig, views, params, example_orig, example_views = [], {}, {}, [], {}
    for batch in tqdm(loader, desc=desc):
        orig.append(backbone(batch["original"]))
        for aug, x in batch["views"].items():
            views.setdefault(aug, []).append(backbone(x))
            params.setdefault(aug, []).append(batch["params"][aug])
        if "example_original" in batch:
            example_orig.append(backbone(batch["example_original"]))
            for aug, x in batch["example_views"].items():
                example_views.setdefault(aug, []).append(backbone(x))
    cat = lambda d: {a: torch.cat(v) for a, v in d.items()}  # noqa: E731
    return EncodedViews(torch.cat(orig), cat(views), cat(params), torch.cat(example_orig) if example_orig else None,
                        cat(example_views) if example_orig else None)


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


def _plot(results: dict[str, dict[str, dict[str, float]]], measure: str, title: str, path: Path) -> Path:
    labels = [AUGMENTATION_LABELS[a] for a in results]
    if measure == "absolute":  # Fig. 3: mean and standard deviation
        values = [results[a][measure]["mean"] for a in results]
        errors = [results[a][measure]["std"] for a in results]
        return bar_chart(labels, {"mean": values}, {"mean": errors}, 0.0, "absolute displacement (Eq. 5)", title, path)
    # Fig. 4, heavy-tailed ratio: median with the interquartile range
    values = [results[a][measure]["median"] for a in results]
    errors = [[values[i] - results[a][measure]["q25"] for i, a in enumerate(results)],
              [results[a][measure]["q75"] - values[i] for i, a in enumerate(results)]]
    return bar_chart(labels, {"median": values}, {"median": errors}, 1.0, "relative displacement (Eq. 6)", title,
                     path)


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
    report = {"method": method_label(method), "checkpoint": str(ckpt), "dataset": cfg.data.dataset, "split": cfg.split,
              "num_images": encoded.original.shape[0], "seed": cfg.seed, "measures": results,
              "plots": [str(_plot(results, m, title, outputs[f"_{m}.png"]))
                        for m in ("absolute", "relative")]}
    write_csv([{"augmentation": aug, "measure": m, **stats} for aug, r in results.items() for m, stats in r.items()],
              outputs[".csv"])
    write_json(report, outputs[".json"])
    return report
