"""SIE, EquiCaps and the SIE repository's baselines on the 3D factor bench at one CPU budget: pretrain
each `scripts/pretrain/factors3d` config per seed, then every SIE measure on the checkpoint
(classification top-1, rotation and colour R^2 on the whole representation and, where the method
splits it, its parts; PRE and MRR / H@k where the checkpoint has a view predictor). Each R^2 is
reported twice: with per-component target means in SS_tot (0 for predicting the mean) and with one
scalar target mean (SIE's and EquiCaps' r2_score). The renderings are made once, before any run, so
the step times compare the methods, not the renderer. Seeds run outer, so a cut-short run still has
every method for the first seeds; finished runs are kept (`runs/<config>-s<seed>.json`) and
`table.md` / `summary.json` are rebuilt from whatever finished (`--report-only`).

    nice -n 10 python benchmarks/sie_factors3d.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.config.schema import validate
from solo_equimod.data.factors3d import Factors3D
from solo_equimod.data.rotations import euler_xyz_quat
from solo_equimod.eval.prediction3d import run_prediction
from solo_equimod.eval.probes3d import run_probe
from solo_equimod.run.atomic import write_json, write_text
from solo_equimod.run.training import pretrain

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("sie", "vicreg", "simclr", "equicaps", "sie_rotcolor", "vicreg_equimod", "simclr_equimod")  # run in this order
MORE_CONFIGS = ("sie_novar", "sie_equi_only", "simclr_augself")  # shipped too; --configs runs them
BATCH = 64  # the configs' batch size
MEASURES = ("top1", "rotation", "color")


def pretrain_overrides(config: str, seed: int, args: argparse.Namespace, out: Path) -> list[str]:
    """The budget (tiny_cnn of `width`, `epochs` over `train_objects`) and, for SIE, its parts at the width:
    the last half equivariant (all of it for sie_equi_only), projectors 2 x the features wide per layer."""
    dim = 4 * args.width
    scale = []
    if config.startswith("sie"):
        equi = dim if config == "sie_equi_only" else dim // 2
        scale = [f"method_kwargs.equi_dim={equi}", f"method_kwargs.mlp=[{2 * dim},{2 * dim},{2 * dim}]"]
    return [f"backbone.kwargs.width={args.width}", f"max_epochs={args.epochs}",
            f"data.synthetic_size={args.train_objects}", "limit_val_batches=0", "data.num_workers=0", *scale,
            f"seed={seed}", f"checkpoint.dir={out / 'ckpt'}", f"name={config}-s{seed}"]


def probe_settings(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    return {"max_epochs": args.probe_epochs, "hidden_dim": args.probe_hidden, "max_objects": args.probe_objects,
            "seed": seed, "overwrite": True}


def bench_config(config: str, seed: int, args: argparse.Namespace, out: Path) -> DictConfig:
    """The shipped config at the bench's setting, validated."""
    register_schemas()
    with initialize_config_dir(str(REPO / "scripts/pretrain/factors3d"), version_base="1.3"):
        cfg = compose(config_name=config, overrides=pretrain_overrides(config, seed, args, out))
    for view in cfg.augmentations:  # the renderings resized to --size (Resize + Normalize, as SIE's --resolution)
        view.crop_size = args.size
    return validate(cfg)


def run_one(config: str, seed: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cfg = bench_config(config, seed, args, out)
    start = time.time()
    ckpt = str(pretrain(cfg))
    train_s = time.time() - start
    steps = args.epochs * (args.train_objects // BATCH)
    ev = {"pretrained_feature_extractor": ckpt, **probe_settings(args, seed)}  # reports in the run's folder
    result: dict[str, Any] = {"config": config, "seed": seed, "train_seconds": round(train_s, 1), "steps": steps,
                              "step_seconds": train_s / steps}
    classification = run_probe("classification", ev)
    result["top1"], result["majority_top1"] = classification["top1"], classification["majority_top1"]
    for kind in ("rotation", "color"):
        report = run_probe(kind, ev)
        result[kind] = {"r2": report["r2_column_means"], "r2_scalar_mean": report["r2"],
                        "floor": {"r2": report["r2_of_component_means"]["r2_column_means"],
                                  "r2_scalar_mean": report["r2_of_component_means"]["r2"]}}
    if config.startswith("sie") or "equi" in config:
        result["pre"] = run_prediction("pre", ev)["pre"]["val-val"]
        result["retrieval"] = run_prediction("mrr", ev)["mrr"]
    result["seconds"] = round(time.time() - start, 1)
    return result


def mean_std(values: list[float]) -> str:
    values = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
    if not values:
        return "-"
    mean = statistics.mean(values)
    return f"{mean:.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{mean:.3f}"


def parts_cell(per_seed: list[dict[str, float]]) -> str:
    """mean ± std of the whole representation; a method's parts (inv / equ) on further lines."""
    parts = {p: mean_std([d[p] for d in per_seed]) for p in per_seed[0]}
    return parts["whole"] + "".join(f"<br>{p[:3]}: {v}" for p, v in parts.items() if p != "whole")


def summarise(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per config: the seeds, and mean / std over seeds of every measure (per part where split)."""
    summary: dict[str, dict[str, Any]] = {}
    for config in (*CONFIGS, *MORE_CONFIGS):
        rows = [r for r in results if r["config"] == config]
        if not rows:
            continue

        def stats(values: list[float]) -> dict[str, float]:
            return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}

        entry: dict[str, Any] = {"seeds": [r["seed"] for r in rows],
                                 "step_seconds": stats([r["step_seconds"] for r in rows])}
        entry["top1"] = {p: stats([r["top1"][p] for r in rows]) for p in rows[0]["top1"]}
        for kind in ("rotation", "color"):
            for key in ("r2", "r2_scalar_mean"):
                entry[f"{kind}_{key}"] = {p: stats([r[kind][key][p] for r in rows]) for p in rows[0][kind][key]}
        if "pre" in rows[0]:
            entry["pre"] = stats([r["pre"] for r in rows])
            entry.update({k: stats([r["retrieval"][k] for r in rows]) for k in rows[0]["retrieval"]})
        summary[config] = entry
    return summary


def table(results: list[dict[str, Any]]) -> str:
    """One row per config, mean ± std over seeds; the step time relative to VICReg's (same seeds' mean)."""
    columns = ["config", "seeds", "top1", "rot R² (per-comp. means)", "rot R² (scalar mean)", "colour R² (per-comp.)",
               "colour R² (scalar)", "PRE", "MRR", "H@1", "H@5", "s / step", "step time / VICReg's"]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    vicreg = [r["step_seconds"] for r in results if r["config"] == "vicreg"]
    for config in (*CONFIGS, *MORE_CONFIGS):
        rows = [r for r in results if r["config"] == config]
        if not rows:
            continue
        seeds = ",".join(str(r["seed"]) for r in rows)
        cells = [config, seeds, parts_cell([r["top1"] for r in rows])]
        for kind in ("rotation", "color"):
            cells += [parts_cell([r[kind][key] for r in rows]) for key in ("r2", "r2_scalar_mean")]
        if "pre" in rows[0]:
            cells += [mean_std([r["pre"] for r in rows])] + [mean_std([r["retrieval"][k] for r in rows])
                                                             for k in ("mrr", "h@1", "h@5")]
        else:
            cells += ["-"] * 4
        step = statistics.mean(r["step_seconds"] for r in rows)
        cells += [f"{step:.3f}", f"{step / statistics.mean(vicreg):.2f}" if vicreg else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def floors(results: list[dict[str, Any]]) -> str:
    """What predicting the mean and guessing score on the same pairs and views, per seed."""
    if not results:
        return ""
    first = {r["seed"]: r for r in results}
    val = Factors3D("val")
    views = val.num_views
    chance_mrr = sum(1 / k for k in range(1, views + 1)) / views
    quats = euler_xyz_quat(np.concatenate([val.latents(i) for i in range(len(val))])[:, :3])
    rng = np.random.default_rng(0)
    a, b = rng.integers(len(quats), size=(2, 100_000))
    chance_pre = float(np.mean(1 - (quats[a] * quats[b]).sum(1) ** 2))  # the neighbour: a random val view
    lines = [f"- majority top-1: {mean_std([r['majority_top1'] for r in first.values()])}"]
    for kind in ("rotation", "color"):
        floor = {key: mean_std([r[kind]["floor"][key] for r in first.values()]) for key in ("r2", "r2_scalar_mean")}
        lines.append(f"- {kind}, predicting the training pairs' per-component mean: R² (per-comp. means) {floor['r2']}, "
                     f"R² (scalar mean) {floor['r2_scalar_mean']}")
    lines.append(f"- chance over {views} views: MRR {chance_mrr:.3f} (H_{views} / {views}), H@1 {1 / views:.3f}, "
                 f"H@5 {5 / views:.3f}; PRE of a random neighbour {chance_pre:.3f}")
    return "\n".join(lines)


def warm_renderings(args: argparse.Namespace) -> float:
    """Every view of every object both splits use, rendered into the in-process cache (seconds taken)."""
    start = time.time()
    for split, count in (("train", args.train_objects), ("val", None)):
        data = Factors3D(split, objects=count)
        for index in range(len(data)):
            for view in range(data.num_views):
                data.image(index, view)
    return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=(*CONFIGS, *MORE_CONFIGS))
    parser.add_argument("--width", type=int, default=16, help="tiny_cnn width (features: 4 x width)")
    parser.add_argument("--epochs", type=int, default=100, help="pretraining epochs")
    parser.add_argument("--size", type=int, default=16, help="side the 32 px renderings are resized to")
    parser.add_argument("--train-objects", type=int, default=384, help="factors3d training objects (6 classes)")
    parser.add_argument("--probe-epochs", type=int, default=300, help="epochs of each probe (SIE's)")
    parser.add_argument("--probe-objects", type=int, default=None, help="first N objects of each split (all: unset)")
    parser.add_argument("--probe-hidden", type=int, default=256, help="regression MLP width (SIE: 1024)")
    parser.add_argument("--out-dir", default=str(REPO / "benchmarks/results/sie_factors3d"))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    for name in ("width", "size", "epochs", "train_objects", "probe_epochs", "probe_hidden"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} is invalid: must be >= 1")
    if args.train_objects < BATCH:
        parser.error(f"--train-objects={args.train_objects} is invalid: must be >= the batch size {BATCH}")
    out = Path(args.out_dir)
    torch.set_num_threads(1)  # on a shared 2-core machine one thread trains ~3x faster than two
    settings = {k: v for k, v in vars(args).items() if k not in ("seeds", "configs", "out_dir", "report_only")}
    todo = [(s, c) for s in ([] if args.report_only else args.seeds) for c in args.configs
            if not (out / "runs" / f"{c}-s{s}.json").is_file()]
    if todo:
        print(f"rendered every view in {warm_renderings(args):.0f} s", flush=True)
    for seed, config in todo:
        if (out / "runs" / f"{config}-s{seed}.json").is_file():  # finished meanwhile by another process
            continue
        write_json({**run_one(config, seed, args, out), "settings": settings}, out / "runs" / f"{config}-s{seed}.json")
        print(json.dumps(json.loads((out / "runs" / f"{config}-s{seed}.json").read_text())), flush=True)
    results = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    used = sorted({json.dumps(r["settings"], sort_keys=True) for r in results})
    header = (f"machine: 2-core {platform.machine()} CPU shared with other jobs, {torch.get_num_threads()} torch thread "
              f"per process; "
              f"settings: {', '.join(used)}\n\n")
    text = header + table(results) + "\n\nFloors and chance:\n\n" + floors(results) + "\n"
    write_text(out / "table.md", text)
    write_json({"settings": [json.loads(u) for u in used], "configs": summarise(results)}, out / "summary.json")
    print(text)


if __name__ == "__main__":
    main()
