"""Linear-probe top-1 of a short pretraining against a randomly initialised backbone.

Pretrains each method with the given config and overrides, saves an untrained copy of the same
model, and runs the same linear evaluation on all (features extracted once, paper optimiser).

    python benchmarks/linear_probe.py --config-dir scripts/pretrain/synthetic --methods simclr simclr_equimod
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightning.pytorch as pl
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from solo_equimod.checkpoints import save_method
from solo_equimod.config import register_schemas, validate
from solo_equimod.data.datasets import num_classes_of
from solo_equimod.data.pretrain import build_split
from solo_equimod.eval.linear import run_linear
from solo_equimod.methods import METHODS
from solo_equimod.training import pretrain

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-dir", default=str(REPO / "scripts/pretrain/synthetic"))
    parser.add_argument("--methods", nargs="+", default=["simclr", "simclr_equimod"])
    parser.add_argument("--linear-epochs", type=int, default=30)
    parser.add_argument("--out-dir", default=str(REPO / "benchmarks/results/linear_probe"))
    parser.add_argument("overrides", nargs="*", help="pretraining overrides, e.g. max_epochs=5")
    args = parser.parse_args()
    register_schemas()
    out_dir = Path(args.out_dir)
    checkpoints: dict[str, Path] = {}
    with initialize_config_dir(str(Path(args.config_dir).resolve()), version_base="1.3"):
        for method in args.methods:
            cfg = validate(compose(config_name=method, overrides=[f"checkpoint.dir={out_dir}", *args.overrides]))
            if not checkpoints:  # the same architecture untrained: the reference a pretraining must beat
                untrained = cfg.copy()
                untrained.data.num_classes = num_classes_of(build_split(cfg, "train", None))
                pl.seed_everything(cfg.seed)
                checkpoints["random init"] = save_method(METHODS[method](untrained), out_dir / "random_init.ckpt")
            checkpoints[method] = pretrain(cfg)
    results = {}
    for label, ckpt in checkpoints.items():
        results[label] = run_linear(OmegaConf.create({
            "pretrained_feature_extractor": str(ckpt), "max_epochs": args.linear_epochs, "augment": False,
            "accelerator": "cpu", "output": str(out_dir / f"linear_{label.replace(' ', '_')}.json"),
            "data": {k: cfg.data[k] for k in ("dataset", "train_path", "val_path", "num_workers", "synthetic_size")},
        }))
    (out_dir / "summary.json").write_text(json.dumps({"overrides": args.overrides, "results": results}, indent=2))
    print(f"overrides: {' '.join(args.overrides)}\n| backbone | linear top-1 | top-5 |\n|---|---|---|")
    for label, r in results.items():
        print(f"| {label} | {r['top1']:.1f} | {r['top5']:.1f} |")


if __name__ == "__main__":
    main()
