"""Baselines against their +EquiMod versions (or any list of configs, `--runs`) under one budget:
pretrain every run with the same seeds and settings, evaluate each checkpoint (kNN, linear probe,
equivariance for models with a view predictor such as EquiMod's, augmentation sensitivity), add a
randomly initialised backbone per seed as the floor, and measure training throughput side by side.
Writes `summary.json`, `table.md` and PNG plots to the results folder; finished runs are kept
(`runs/<label>-s<seed>/result.json`), so a rerun resumes, and `--report-only` rebuilds the tables
from whatever finished.

    python benchmarks/compare.py --seeds 0 1 2 -- max_epochs=1 limit_train_batches=12   # on --data's CIFAR folder
    python benchmarks/compare.py --data '' --seeds 0 -- max_epochs=1                   # on the configs' own data
    python benchmarks/compare.py --runs simclr simclr_rotation \\
        essl_jigsaw=essl,objectives.transform_prediction.task=jigsaw \\
        --out-dir benchmarks/results/compare_objectives --markers objectives -- ...   # throughput ratios to the first run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from benchmarks.step_time import build_from_config, parse_run, side_by_side
from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.config.schema import validate
from solo_equimod.data.describe import num_classes_of
from solo_equimod.data.pretrain import build_split
from solo_equimod.eval.augmentation_views import AUGMENTATION_LABELS
from solo_equimod.eval.equivariance import run_equivariance
from solo_equimod.eval.knn import run_knn
from solo_equimod.eval.linear import run_linear
from solo_equimod.eval.plots import bar_chart
from solo_equimod.eval.sensitivity import run_sensitivity
from solo_equimod.methods import METHODS
from solo_equimod.objectives import OBJECTIVES, PredictsViews, PredictsViewsFromExample
from solo_equimod.run import atomic
from solo_equimod.run.atomic import write_json
from solo_equimod.run.checkpoints import save_method
from solo_equimod.run.training import pretrain

REPO = Path(__file__).resolve().parents[1]
CIFAR_SUBSET = REPO.parent / "shared/data/cifar10-subset"  # the CIFAR-10 subset beside the checkout (train/, val/)
BASES = ("simclr", "byol", "barlow_twins", "vicreg")
RANDOM = "random init"


# ----- throughput ---------------------------------------------------------------------------------
class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 5 ms. Run with
    MALLOC_MMAP_THRESHOLD_=131072 so glibc returns freed tensors to the system at once; otherwise
    a step reuses the previous step's memory and shows ~0."""

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = self._rss()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.running = False
        self.thread.join()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def throughput(groups: list[dict[str, DictConfig]], batch_size: int, steps: int, warmup: int) -> list[dict[str, Any]]:
    """Images/s and peak memory of one training step per run; the runs of a group (a baseline and its
    +EquiMod version, or every `--runs` entry) alternate step by step so that machine load hits all
    alike; each ratio is to the group's first run."""
    rows = []
    for group in groups:
        steps_of = side_by_side({m: build_from_config(cfg, batch_size) for m, cfg in group.items()}, steps, warmup,
                                measure=PeakRSS)
        reference = statistics.median(t for t, _ in steps_of[next(iter(group))])
        for m, recorded in steps_of.items():
            med = statistics.median(t for t, _ in recorded)
            rows.append({"method": m, "step_s": med, "images_per_s": batch_size / med,
                         "peak_mem_mb": max(mem.delta_mb for _, mem in recorded), "ratio_to_baseline": med / reference})
    return rows


# ----- one run ------------------------------------------------------------------------------------
def predicts_views(cfg: DictConfig) -> bool:
    """Whether a run has an objective that predicts views' embeddings (the equivariance measures need one)."""
    return any(issubclass(OBJECTIVES[name], (PredictsViews, PredictsViewsFromExample))
               for name in (cfg.get("objectives") or {}))


def evaluate(ckpt: Path, data: dict[str, Any], args: argparse.Namespace, equimod: bool) -> dict[str, Any]:
    """Evaluations 1-3 of one checkpoint (reports also land next to it, in the run folder this benchmark
    made: a rerun of an interrupted run replaces its own reports, `overwrite`)."""
    views = {"pretrained_feature_extractor": str(ckpt), "data": data, "max_images": args.max_images,
             "num_workers": data["num_workers"], "overwrite": True}
    result = {
        "knn": run_knn({"pretrained_feature_extractor": str(ckpt), "data": data, "k": args.knn_k,
                        "temperature": args.knn_t, "num_workers": data["num_workers"], "overwrite": True}),
        "linear": run_linear(OmegaConf.create({"pretrained_feature_extractor": str(ckpt), "data": data,
                                               "max_epochs": args.linear_epochs, "overwrite": True,
                                               "augment": args.linear_protocol == "augmented", "accelerator": "cpu"})),
        "sensitivity": run_sensitivity(views),
    }
    if equimod:
        result["equivariance"] = run_equivariance(views)
    return result


def run_one(label: str, seed: int, cfg: DictConfig, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    run_dir = out_dir / "runs" / f"{label.replace(' ', '_')}-s{seed}"
    done = run_dir / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    start = time.perf_counter()
    if label == RANDOM:  # the same architecture untrained: the floor a pretraining must beat
        cfg.data.num_classes = num_classes_of(build_split(cfg, "train", None))
        pl.seed_everything(seed)
        ckpt = save_method(METHODS[cfg.method](cfg), run_dir / "random_init.ckpt")
    else:
        ckpt = pretrain(cfg)
    pretrain_s = time.perf_counter() - start
    data = OmegaConf.to_container(cfg.data, resolve=True)
    result = {"method": label, "seed": seed, "pretrain_s": pretrain_s,
              **evaluate(ckpt, data, args, equimod=predicts_views(cfg))}
    write_json(repo_relative(result), done)
    return result


# ----- report -------------------------------------------------------------------------------------
def _stat(values: list[float]) -> str:
    """mean ± std; NaN values (an R² of a constant parameter: nothing to probe) are left out, "-" if none remain."""
    values = [v for v in values if v == v]
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


def report(out_dir: Path, meta: dict[str, Any]) -> str:
    """Markdown tables and plots from every finished run, in the order of `meta["labels"]`."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((out_dir / "runs").glob("*/result.json")):
        r = json.loads(path.read_text())
        runs.setdefault(r["method"], []).append(r)
    labels = meta.get("labels") or [x for b in BASES for x in (b, f"{b}_equimod")]
    order = [m for m in [RANDOM, *labels] if m in runs]
    lines = ["| method | seeds | linear top-1 | kNN top-1 | pretrain s/run |", "|---|---|---|---|---|"]
    for m in order:
        rs = runs[m]
        lines.append(f"| {m} | {len(rs)} | {_stat([r['linear']['top1'] for r in rs])} | "
                     f"{_stat([r['knn']['top1'] for r in rs])} | {statistics.mean(r['pretrain_s'] for r in rs):.0f} |")
    tables = ["Linear probe and kNN top-1 (%), mean ± std over seeds:", "", *lines, ""]

    eq = [m for m in order if "equivariance" in runs[m][0]]
    if eq:
        augs = list(runs[eq[0]][0]["equivariance"]["measures"])
        for measure, key, ref in (("absolute", "mean", 0.0), ("relative", "median", 1.0)):
            head = " | ".join(AUGMENTATION_LABELS[a] for a in augs)
            rows = [f"| method | {head} |", "|---|" + "---|" * len(augs)]
            series, errors = {}, {}
            for m in eq:
                per_aug = [[r["equivariance"]["measures"][a][measure][key] for r in runs[m]] for a in augs]
                rows.append(f"| {m} | " + " | ".join(
                    f"{statistics.mean(v):.3f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.3f}" for v in per_aug)
                    + " |")
                series[m] = [statistics.mean(v) for v in per_aug]
                errors[m] = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in per_aug]
            eq_name = "Eq. 5, mean over images" if measure == "absolute" else "Eq. 6, median over images"
            tables += [f"Equivariance, {measure} displacement ({eq_name}; mean ± std over seeds; "
                       f"invariance = {ref:g}):", "", *rows, ""]
            bar_chart([AUGMENTATION_LABELS[a] for a in augs], series, errors, ref,
                      f"{measure} ({eq_name.split(',')[0]})", f"{measure} displacement per augmentation",
                      out_dir / f"equivariance_{measure}.png")

    groups = list(dict.fromkeys(g for m in order for g in runs[m][0]["sensitivity"]["probe_r2"]))
    rows = ["| method | " + " | ".join(groups) + " | shift: all |", "|---|" + "---|" * (len(groups) + 1)]
    for m in order:
        rs = runs[m]  # "-": the run's policy has no such augmentation
        cells = [_stat([100 * r["sensitivity"]["probe_r2"][g] for r in rs if g in r["sensitivity"]["probe_r2"]])
                 for g in groups]
        shift = _stat([100 * r["sensitivity"]["representation_shift"]["all"]["mean"] for r in rs])
        rows.append(f"| {m} | " + " | ".join(cells) + f" | {shift} |")
    tables += ["Parameter-probe R² × 100 per augmentation group (ridge on [h(x), h(t(x))], fit on train, "
               "scored on val) and representation shift 100 × (1 − cos(h(x), h(t(x)))) under the full policy:",
               "", *rows, ""]

    if meta.get("throughput"):
        reference = "baseline" if not meta.get("runs") else meta["labels"][0]
        rows = [f"| method | s/step | images/s | peak step memory (MB) | ratio to {reference} |", "|---|---|---|---|---|"]
        for r in meta["throughput"]:
            rows.append(f"| {r['method']} | {r['step_s']:.3f} | {r['images_per_s']:.0f} | {r['peak_mem_mb']:.0f} | "
                        f"{r['ratio_to_baseline']:.2f}x |")
        tables += [f"Training throughput ({meta['throughput_setup']}):", "", *rows, ""]

    labels = order
    for metric in ("linear", "knn"):
        values = [statistics.mean(r[metric]["top1"] for r in runs[m]) for m in labels]
        errs = [statistics.stdev([r[metric]["top1"] for r in runs[m]]) if len(runs[m]) > 1 else 0.0 for m in labels]
        bar_chart(labels, {"top-1": values}, {"top-1": errs}, values[0] if labels[0] == RANDOM else 0.0,
                  "top-1 (%)", f"{metric} top-1 (dashed: random init)", out_dir / f"{metric}_top1.png")
    text = "\n".join(tables)
    (out_dir / "table.md").write_text(text)
    write_json(repo_relative({"meta": meta, "runs": runs}), out_dir / "summary.json")
    return text


def write_into_markdown(path: Path, text: str, name: str = "compare") -> None:
    """Replace the block between `<!-- name:begin -->` and `<!-- name:end -->` in `path` (e.g.
    docs/benchmarks/accuracy.md) with `text`, atomically."""
    doc = path.read_text()
    markers = (f"<!-- {name}:begin -->", f"<!-- {name}:end -->")
    begin, end = doc.find(markers[0]), doc.find(markers[1])
    if begin < 0 or end < begin:
        raise ValueError(f"{path} has no '{markers[0]}' ... '{markers[1]}' block to write the tables into")
    atomic.write_text(path, doc[:begin + len(markers[0])] + "\n" + text.rstrip() + "\n" + doc[end:])


def compose_with(config: str, overrides: list[str]) -> DictConfig:
    """The config with the overrides; `objectives.<name>.*` ones only where that objective is configured,
    so one command line sets e.g. EquiMod's head width for the +EquiMod runs and leaves the baselines alone."""
    has = set(compose(config_name=config, overrides=[o for o in overrides if o.startswith("+objectives.")])
              .get("objectives") or {})
    keep = [o for o in overrides if not o.startswith("objectives.") or o.split(".")[1] in has]
    return compose(config_name=config, overrides=keep)


def data_overrides(folder: str) -> list[str]:
    """The overrides that point a config at `folder`'s train/ and val/ trees (absolute: the runs may
    read them from any working folder; `repo_relative` writes them relative in the results)."""
    if not folder or (folder == str(CIFAR_SUBSET) and not CIFAR_SUBSET.is_dir()):  # the default, when absent: none
        return []
    if not Path(folder, "train").is_dir():
        raise SystemExit(f"error: --data {folder}: no train/ folder there (give --data '' for the configs' own data)")
    root = Path(folder).resolve()
    return ["data.dataset=custom", f"data.train_path={root}/train", f"data.val_path={root}/val", "data.download=false"]


def repo_relative(value: Any) -> Any:
    """`value` (JSON-like) with every absolute path under the repository's parent folder written
    relative to the repository: the committed results name no one machine's folders."""
    if isinstance(value, dict):
        return {key: repo_relative(item) for key, item in value.items()}
    if isinstance(value, list):
        return [repo_relative(item) for item in value]
    if isinstance(value, str) and str(REPO.parent) in value:
        return re.sub(re.escape(str(REPO.parent)) + r"/[^\s=,]*", lambda m: os.path.relpath(m.group(0), REPO), value)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-dir", default=str(REPO / "scripts/pretrain/synthetic"))
    parser.add_argument("--bases", nargs="+", default=list(BASES), choices=BASES)
    parser.add_argument("--runs", nargs="+", help="`label=config[,override...]` instead of the bases' pairs; "
                                                   "throughput ratios are to the first")
    parser.add_argument("--markers", default="compare", help="the Markdown block: <!-- NAME:begin/end -->")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--linear-epochs", type=int, default=30)
    parser.add_argument("--linear-protocol", choices=["augmented", "cached"], default="augmented",
                        help="augmented: the paper/official protocol (EquiMod Recipes row 7); cached: features once, fast")
    parser.add_argument("--knn-k", type=int, default=200)
    parser.add_argument("--knn-t", type=float, default=0.1)
    parser.add_argument("--max-images", type=int, default=1000, help="images for equivariance/sensitivity")
    parser.add_argument("--throughput-steps", type=int, default=5)
    parser.add_argument("--remeasure-throughput", action="store_true",
                        help="measure throughput again though meta.json has it (after a code change, or on an idle machine)")
    parser.add_argument("--out-dir", default=str(REPO / "benchmarks/results/compare"))
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--benchmarks-md", default=str(REPO / "docs/benchmarks/accuracy.md"),
                        help="Markdown file whose compare:begin/end block receives the tables ('' to skip)")
    parser.add_argument("--data", default=str(CIFAR_SUBSET),
                        help="a folder with train/ and val/ ImageFolder trees, read as data.dataset=custom (default: the "
                             "CIFAR-10 subset beside the repository, when there); '' keeps the configs' own data")
    parser.add_argument("overrides", nargs="*", help="pretraining overrides, e.g. max_epochs=1")
    args = parser.parse_args()
    args.overrides = [*data_overrides(args.data), *args.overrides]
    out_dir = Path(args.out_dir)
    meta_path = out_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if not args.report_only:
        register_schemas()
        specs = [parse_run(r) for r in args.runs] if args.runs else \
            [(x, x, []) for b in args.bases for x in (b, f"{b}_equimod")]
        with initialize_config_dir(str(Path(args.config_dir).resolve()), version_base="1.3"):
            cfgs = {label: compose_with(config, [*args.overrides, *extra])
                    for label, config, extra in [(RANDOM, "simclr", []), *specs]}
        groups = [{label: cfgs[label] for label, _, _ in specs}] if args.runs else \
            [{m: cfgs[m] for m in (b, f"{b}_equimod")} for b in args.bases]
        if "throughput" not in meta or args.remeasure_throughput:
            backbone, batch = cfgs[RANDOM].backbone.name, int(cfgs[RANDOM].optimizer.batch_size)
            meta = {"overrides": args.overrides, "seeds": args.seeds, "args": vars(args), "runs": args.runs,
                    "labels": [label for label, _, _ in specs],
                    "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
                               f"{'CUDA' if torch.cuda.is_available() else 'CPU only'}",
                    "throughput_setup": f"{backbone}, batch {batch} made by each run's pipeline on random images "
                                        f"(+ each run's extra inputs), median of {args.throughput_steps} steps",
                    "throughput": throughput(groups, batch, args.throughput_steps, warmup=1)}
            write_json(repo_relative(meta), meta_path)
        labels = [*[m for m in cfgs if m != RANDOM], RANDOM]
        for seed in args.seeds:  # seed-major, pairs first: a cut-short run still compares each pair
            for label in labels:
                cfg = cfgs[label]
                run_cfg = validate(OmegaConf.merge(cfg, {"seed": seed, "name": f"{label.replace(' ', '_')}-s{seed}",
                                                         "checkpoint": {"dir": str(out_dir / "runs")}}))
                result = run_one(label, seed, run_cfg, args, out_dir)
                print(f"done {label} seed {seed}: linear {result['linear']['top1']:.1f} "
                      f"knn {result['knn']['top1']:.1f}", flush=True)
                report(out_dir, meta)
    text = report(out_dir, meta)
    if args.benchmarks_md:
        write_into_markdown(Path(args.benchmarks_md), text, args.markers)
    print(text)


if __name__ == "__main__":
    main()
