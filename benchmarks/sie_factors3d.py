"""SIE, its variants and the SIE repository's baselines on the 3D factor bench at one fixed CPU budget:
pretrain each shipped `scripts/pretrain/factors3d` config per seed, then every SIE measure on the
checkpoint (classification top-1, rotation and colour R^2 on the whole representation and, for SIE,
its parts; PRE and MRR / H@1 where the checkpoint has a view predictor). Seeds run outer, so a cut-short
run still has every method for the first seeds; finished runs are kept (`runs/<config>-s<seed>.json`)
and `table.md` is rebuilt from whatever finished (`--report-only`).

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

import torch
from hydra import compose, initialize_config_dir

from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.config.schema import validate
from solo_equimod.eval.prediction3d import run_prediction
from solo_equimod.eval.probes3d import run_probe
from solo_equimod.run.atomic import write_json, write_text
from solo_equimod.run.training import pretrain

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("sie", "sie_rotcolor", "sie_novar", "sie_equi_only", "simclr", "vicreg", "simclr_equimod", "vicreg_equimod",
           "simclr_augself")
# the budget: tiny_cnn width 8 (32-d), 5 epochs of 6 steps (384 objects, batch 64); SIE's parts scaled to the width
BUDGET = ["backbone.kwargs.width=8", "max_epochs=5", "limit_val_batches=0", "data.num_workers=0"]
SIE_SCALE = {"sie_equi_only": ["method_kwargs.equi_dim=32", "method_kwargs.mlp=[64,64,64]"]}
# the probes on the first 60 objects of each split (10 per class), 50 epochs (SIE: all, 300), MLP 2d -> 256 -> 256
EVAL = {"max_epochs": 50, "hidden_dim": 256, "max_objects": 60}
COLUMNS = ("top1", "rotation_r2", "color_r2", "pre", "mrr", "h@1")


def overrides(config: str, seed: int, out: Path) -> list[str]:
    scale = SIE_SCALE.get(config, ["method_kwargs.equi_dim=16", "method_kwargs.mlp=[64,64,64]"]
                          if config.startswith("sie") else [])
    return BUDGET + scale + [f"seed={seed}", f"checkpoint.dir={out / 'ckpt'}", f"name={config}-s{seed}"]


def run_one(config: str, seed: int, out: Path) -> dict[str, Any]:
    register_schemas()
    with initialize_config_dir(str(REPO / "scripts/pretrain/factors3d"), version_base="1.3"):
        cfg = validate(compose(config_name=config, overrides=overrides(config, seed, out)))
    start = time.time()
    ckpt = str(pretrain(cfg))
    train_s = time.time() - start
    ev = {"pretrained_feature_extractor": ckpt, "seed": seed, "overwrite": True, **EVAL}  # reports in its own run folder
    result: dict[str, Any] = {"config": config, "seed": seed, "train_seconds": round(train_s, 1)}
    result["top1"] = run_probe("classification", ev)["top1"]
    result["rotation_r2"] = run_probe("rotation", ev)["r2"]
    result["color_r2"] = run_probe("color", ev)["r2"]
    if config.startswith("sie") or "equimod" in config:
        result["pre"] = run_prediction("pre", ev)["pre"]["val-val"]
        mrr = run_prediction("mrr", ev)["mrr"]
        result["mrr"], result["h@1"] = mrr["mrr"], mrr["h@1"]
    result["seconds"] = round(time.time() - start, 1)
    return result


def cell(values: list[float], part: str | None = None) -> str:
    values = [v for v in values if isinstance(v, float) and not math.isnan(v)]
    if not values:
        return "-"
    mean = statistics.mean(values)
    return f"{mean:.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{mean:.3f}"


def table(results: list[dict[str, Any]]) -> str:
    """One row per config: each column's mean ± std over seeds of the whole representation; SIE rows add
    (inv / equi) for top-1 and rotation R^2 in a second line."""
    lines = ["| config | seeds | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for config in CONFIGS:
        rows = [r for r in results if r["config"] == config]
        if not rows:
            continue
        cells = []
        for col in COLUMNS:
            if col in ("top1", "rotation_r2", "color_r2"):
                parts = {p: cell([r[col][p] for r in rows if col in r]) for p in rows[0][col]}
                text = parts["whole"] + "".join(f"<br>{p[:3]}: {v}" for p, v in parts.items() if p != "whole")
                cells.append(text)
            else:
                cells.append(cell([r.get(col) for r in rows]))
        lines.append(f"| {config} | {','.join(str(r['seed']) for r in rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--out-dir", default=str(REPO / "benchmarks/results/sie_factors3d"))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out_dir)
    torch.set_num_threads(2)
    for seed in ([] if args.report_only else args.seeds):
        for config in args.configs:
            path = out / "runs" / f"{config}-s{seed}.json"
            if not path.is_file():
                write_json(run_one(config, seed, out), path)
                print(json.dumps(json.loads(path.read_text())), flush=True)
    results = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    header = (f"machine: {platform.machine()} CPU, {torch.get_num_threads()} threads, shared with other jobs; "
              f"budget: {' '.join(BUDGET)}; probes: {EVAL}\n\n")
    write_text(out / "table.md", header + table(results) + "\n")
    print(header + table(results))


if __name__ == "__main__":
    main()
