"""Training-step time of each baseline and its +EquiMod version, side by side in one run.

Same backbone, same batch, same optimiser; the two methods alternate step by step so that
machine load affects both alike. Prints a Markdown table and writes JSON.

    python benchmarks/step_time.py --backbone resnet18 --batch-size 64 --steps 10 --methods simclr
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from solo_equimod.augment import layout_for, policies_from_config
from solo_equimod.methods import METHODS

REPO = Path(__file__).resolve().parents[1]
POLICY = {"simclr": "simclr", "byol": "byol", "barlow_twins": "barlow", "vicreg": "barlow"}


def build(method: str, backbone: str, batch_size: int) -> tuple[torch.nn.Module, dict]:
    base = method.removesuffix("_equimod")
    cfg_dir = REPO / "scripts/pretrain/cifar"
    method_cfg = OmegaConf.load(cfg_dir / f"{base}.yaml")
    cfg = OmegaConf.create({
        "name": "bench", "method": method, "backbone": {"name": backbone},
        "method_kwargs": method_cfg.method_kwargs, "data": {"dataset": "cifar10", "num_classes": 10},
        "augmentations": OmegaConf.load(cfg_dir / f"augmentations/{POLICY[base]}.yaml"),
    })
    model = METHODS[method](cfg)
    dim = layout_for(policies_from_config(cfg.augmentations)).dim
    g = torch.Generator().manual_seed(0)
    batch = {
        "index": torch.arange(batch_size),
        "views": [torch.randn(batch_size, 3, 32, 32, generator=g) for _ in range(2)],
        "params": [torch.randn(batch_size, dim, generator=g) for _ in range(2)],
        "image_size": torch.full((batch_size, 2), 32),
        "original": torch.randn(batch_size, 3, 32, 32, generator=g),
        "target": torch.randint(0, 10, (batch_size,), generator=g),
        "extras": {},
    }
    model.log = model.log_dict = lambda *a, **k: None  # no Trainer attached: logging is a no-op
    return model, batch


def time_step(model: torch.nn.Module, batch: dict, optimizer: torch.optim.Optimizer) -> float:
    start = time.perf_counter()
    loss = model.training_step(batch, 0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["simclr", "byol", "barlow_twins", "vicreg"])
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/step_time.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for base in args.methods:
        pair = {m: build(m, args.backbone, args.batch_size) for m in (base, f"{base}_equimod")}
        opts = {m: torch.optim.SGD(model.parameters(), lr=1e-3) for m, (model, _) in pair.items()}
        times: dict[str, list[float]] = {m: [] for m in pair}
        for step in range(args.warmup + args.steps):
            for m, (model, batch) in pair.items():
                t = time_step(model, batch, opts[m])
                if step >= args.warmup:
                    times[m].append(t)
        base_t, eq_t = (statistics.median(times[m]) for m in pair)
        rows.append({"method": base, "baseline_s": base_t, "equimod_s": eq_t, "ratio": eq_t / base_t})
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU"
    result = {"backbone": args.backbone, "batch_size": args.batch_size, "steps": args.steps, "machine": machine,
              "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"backbone {args.backbone}, batch {args.batch_size} x 2 views (+ original for EquiMod), "
          f"median of {args.steps} steps, {machine}")
    print("| method | baseline s/step | +EquiMod s/step | ratio |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['baseline_s']:.3f} | {r['equimod_s']:.3f} | {r['ratio']:.2f}x |")


if __name__ == "__main__":
    main()
