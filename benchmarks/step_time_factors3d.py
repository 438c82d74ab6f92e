"""Training-step time of the 3D bench's configs side by side at its setting (`benchmarks/sie_factors3d.py`):
one real batch of view pairs per config (its group elements, EquiMod's normalisation prepared from the
training data), the configs alternating step by step so that the machine's load affects all alike (the
bench's own step times are whole runs, taken at whatever load each met). Median of the timed steps;
ratios to VICReg's.

    nice -n 10 python benchmarks/step_time_factors3d.py --steps 20
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
from pathlib import Path

import torch
from torch.utils.data import default_collate

from benchmarks.sie_factors3d import CONFIGS, REPO, bench_config
from benchmarks.step_time import side_by_side
from solo_equimod.data.pretrain import PretrainDataModule
from solo_equimod.methods import METHODS
from solo_equimod.objectives.compose import pipeline_requests
from solo_equimod.run.atomic import write_json


def build(config: str, setting: argparse.Namespace, scratch: Path) -> tuple[torch.nn.Module, dict]:
    cfg = bench_config(config, 0, setting, scratch)
    cfg.data.num_classes = 6
    datamodule = PretrainDataModule(cfg, pipeline_requests(cfg))
    model = METHODS[cfg.method](cfg)
    model.prepare_objectives(datamodule)
    pairs = datamodule.pretrain_set()
    batch = default_collate([pairs[i] for i in range(cfg.optimizer.batch_size)])
    model.log = model.log_dict = lambda *a, **k: None  # no Trainer attached: logging is a no-op
    return model, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/sie_factors3d/step_time.json"))
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0:
        parser.error(f"--steps={args.steps} must be >= 1 and --warmup={args.warmup} >= 0")
    torch.set_num_threads(1)  # as the bench
    setting = argparse.Namespace(width=args.width, size=args.size, epochs=1, train_objects=64)
    with tempfile.TemporaryDirectory() as scratch:
        models = {config: build(config, setting, Path(scratch)) for config in CONFIGS}
    times = {c: statistics.median(t for t, _ in v) for c, v in side_by_side(models, args.steps, args.warmup).items()}
    rows = [{"config": c, "step_s": t, "ratio_to_vicreg": t / times["vicreg"]} for c, t in times.items()]
    machine = f"2-core {platform.machine()} CPU shared with other jobs, 1 torch thread"
    write_json({"width": args.width, "size": args.size, "batch_size": 64, "steps": args.steps, "machine": machine,
                "rows": rows}, Path(args.out))
    print(f"tiny_cnn width {args.width}, {args.size} px, batch 64, median of {args.steps} alternating steps, {machine}")
    print("| config | s / step | / VICReg's |\n|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['step_s']:.3f} | {r['ratio_to_vicreg']:.2f} |")


if __name__ == "__main__":
    main()
