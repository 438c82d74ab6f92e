"""Training-step time of several pretraining configs side by side in one run.

Same backbone, same batch size, same optimiser; the configs alternate step by step so that machine
load affects all alike. Each batch is made by the config's own pipeline (views, parameters and
whatever its objectives ask for: the original, rotated views, pretext images) on random images.
Prints a Markdown table and writes JSON.

    python benchmarks/step_time.py --backbone resnet18 --batch-size 64 --steps 10 --methods simclr
    python benchmarks/step_time.py --runs simclr simclr_rotation simclr_augself \\
        essl_jigsaw=essl,objectives.transform_prediction.task=jigsaw   # ratios to the first run
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, ContextManager

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from torch.utils.data import default_collate

from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.config.schema import validate
from solo_equimod.data.pretrain import build_pretrain_transform
from solo_equimod.errors import config_errors_exit
from solo_equimod.methods import METHODS
from solo_equimod.objectives.compose import pipeline_requests
from solo_equimod.run.atomic import refuse_existing

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "scripts/pretrain/cifar"


def parse_run(spec: str) -> tuple[str, str, list[str]]:
    """`label=config[,override...]` or `config` -> (label, config name, overrides)."""
    label, _, rest = spec.partition("=") if "=" in spec.split(",")[0] else ("", "", spec)
    config, *overrides = rest.split(",")
    return label or config, config, overrides


def compose_run(config: str, overrides: list[str], config_dir: Path = CONFIG_DIR) -> DictConfig:
    register_schemas()
    with initialize_config_dir(str(config_dir.resolve()), version_base="1.3"):
        return compose(config_name=config, overrides=overrides)


def build_from_config(cfg: DictConfig, batch_size: int) -> tuple[torch.nn.Module, dict]:
    """The config's model and one batch of its pipeline's outputs on seeded random 32 px images."""
    cfg = validate(cfg)
    if cfg.data.num_classes is None:  # a custom dataset's class count is read from disk at pretraining; any will do here
        cfg.data.num_classes = 10
    model = METHODS[cfg.method](cfg)
    transform = build_pretrain_transform(cfg, pipeline_requests(cfg))
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        samples = [transform(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g))
                   for _ in range(batch_size)]
    batch = {**default_collate(samples), "index": torch.arange(batch_size),
             "target": torch.randint(0, int(cfg.data.num_classes), (batch_size,), generator=g)}
    model.log = model.log_dict = lambda *a, **k: None  # no Trainer attached: logging is a no-op
    return model, batch


def build(method: str, backbone: str, batch_size: int, overrides: tuple[str, ...] = ()) -> tuple[torch.nn.Module, dict]:
    """`method`'s CIFAR config (`scripts/pretrain/cifar/<method>.yaml`) with another backbone."""
    cfg = compose_run(method, [f"backbone.name={backbone}", "data.dataset=cifar10", "+data.num_classes=10",
                               *overrides])
    return build_from_config(cfg, batch_size)


def time_step(model: torch.nn.Module, batch: dict, optimizer: torch.optim.Optimizer) -> float:
    start = time.perf_counter()
    loss = model.training_step(batch, 0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def side_by_side(models: dict[str, tuple[torch.nn.Module, dict]], steps: int, warmup: int,
                 measure: Callable[[], ContextManager[Any]] = nullcontext) -> dict[str, list[tuple[float, Any]]]:
    """(seconds, what `measure` recorded) of each timed step per model; the models alternate step by step."""
    opts = {m: torch.optim.SGD(model.parameters(), lr=1e-3) for m, (model, _) in models.items()}
    out: dict[str, list[tuple[float, Any]]] = {m: [] for m in models}
    for step in range(warmup + steps):
        for m, (model, batch) in models.items():
            with measure() as record:
                t = time_step(model, batch, opts[m])
            if step >= warmup:
                out[m].append((t, record))
        print(f"step {step + 1}/{warmup + steps}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["simclr", "byol", "barlow_twins", "vicreg"],
                        help="each method next to its +EquiMod version")
    parser.add_argument("--runs", nargs="+", help="`label=config[,override...]`: all side by side, ratios to the first")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/step_time.json"))
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = parser.parse_args()
    with config_errors_exit():  # before measuring: never replace a file this run did not write
        refuse_existing([args.out], args.overwrite)
    torch.manual_seed(0)
    groups = [[parse_run(r) for r in args.runs]] if args.runs else \
        [[(m, m, []), (f"{m}_equimod", f"{m}_equimod", [])] for m in args.methods]
    rows = []
    for group in groups:
        models = {label: build(config, args.backbone, args.batch_size, tuple(ov)) for label, config, ov in group}
        times = {m: statistics.median(t for t, _ in v) for m, v in side_by_side(models, args.steps, args.warmup).items()}
        reference = group[0][0]
        rows += [{"method": m, "reference": reference, "step_s": t, "ratio": t / times[reference]}
                 for m, t in times.items()]
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU"
    result = {"backbone": args.backbone, "batch_size": args.batch_size, "steps": args.steps, "machine": machine,
              "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"backbone {args.backbone}, batch {args.batch_size} (+ each config's extra inputs), "
          f"median of {args.steps} steps, {machine}")
    print("| run | s/step | ratio | to |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['step_s']:.3f} | {r['ratio']:.2f}x | {r['reference']} |")


if __name__ == "__main__":
    main()
