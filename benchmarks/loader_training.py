"""End-to-end training throughput of one pretraining config per `data.format`, side by side (not a test).

Each run is a real `Trainer.fit` of the config (default `simclr_equimod`, CIFAR settings) with its
own data module, so it measures everything a training step waits on: the DataLoader workers
(`image_folder`) or the in-memory batches augmented on the training device (`tensor`), the host to
device copy, forward, backward and the optimiser. Runs alternate format by format and round by
round (ABAB) so that the machine's load affects all alike; each run times `--steps` steps after
`--warmup` untimed ones (start-up, worker spawn, the tensor loader's one-off decode excluded).

Data wait: the time between the end of one training step and the start of the next (Lightning's
`on_train_batch_end` -> `on_train_batch_start`: fetching the batch, augmenting it where the loader
does that in the training process, the copy to the device), as a fraction of the step time. On
CUDA the step end is synchronised so that the GPU's queued work counts as compute, not as wait.

    python benchmarks/loader_training.py --backbones tiny_cnn resnet18 --batch-size 64 --steps 10 \\
        --data ../shared/data/cifar10-subset/train --json benchmarks/results/loader_training.json
    python benchmarks/loader_training.py --device cuda --backbones resnet18 --batch-size 512 \\
        --synthetic 50000 --steps 90 --warmup 8 --workers 8   # GPU: epoch time of 50,000 32 px images
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from step_time import compose_run

from solo_equimod.config.schema import validate
from solo_equimod.data.describe import num_classes_of
from solo_equimod.data.pretrain import PretrainDataModule
from solo_equimod.errors import config_errors_exit
from solo_equimod.methods import METHODS
from solo_equimod.objectives.compose import pipeline_requests
from solo_equimod.run.atomic import refuse_existing


class StepTimer(pl.Callback):
    """Per-step (data wait, compute) seconds, as the module docstring defines them."""

    def __init__(self, sync_cuda: bool) -> None:
        self.sync_cuda = sync_cuda
        self.steps: list[tuple[float, float]] = []
        self._end: float | None = None
        self._start = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._start = time.perf_counter()
        self._wait = 0.0 if self._end is None else self._start - self._end

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.sync_cuda:
            torch.cuda.synchronize()
        self._end = time.perf_counter()
        self.steps.append((self._wait, self._end - self._start))


def run_once(config: str, overrides: list[str], steps: int, warmup: int, device: str) -> dict[str, float]:
    """One short fit; steps/s and data-wait fraction over the timed steps (the first step's wait is unknown)."""
    cfg = validate(compose_run(config, overrides))
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = PretrainDataModule(cfg, pipeline_requests(cfg))
    if cfg.data.num_classes is None:
        cfg.data.num_classes = num_classes_of(datamodule.train_set)
    model = METHODS[cfg.method](cfg)
    model.prepare_objectives(datamodule)
    timer = StepTimer(sync_cuda=device == "cuda")
    trainer = pl.Trainer(
        max_steps=warmup + steps, accelerator="gpu" if device == "cuda" else "cpu", devices=1, precision=cfg.precision,
        logger=False, callbacks=[timer], enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=datamodule)
    timed = timer.steps[warmup:]
    if len(timed) < steps:
        raise SystemExit(f"only {len(timer.steps)} steps ran (an epoch is shorter than --warmup + --steps: "
                         "use a larger dataset or fewer steps)")
    wait, compute = sum(w for w, _ in timed), sum(c for _, c in timed)
    return {"steps_per_s": len(timed) / (wait + compute), "data_wait_fraction": wait / (wait + compute)}


def report(args: argparse.Namespace, common: list[str], runs: dict[str, dict[str, list[dict[str, float]]]],
           final: bool) -> None:
    """The table (when `final`) and the json, rewritten after every run so that a killed benchmark keeps its figures."""
    rows = []
    for backbone, by_format in runs.items():
        if not all(by_format.values()):
            continue
        median = {f: statistics.median(r["steps_per_s"] for r in rs) for f, rs in by_format.items()}
        for fmt, rs in by_format.items():
            rows.append({"backbone": backbone, "format": fmt, "steps_per_s": median[fmt],
                         "images_per_s": median[fmt] * args.batch_size,
                         "ratio": median[fmt] / median[args.formats[0]],
                         "data_wait_fraction": statistics.median(r["data_wait_fraction"] for r in rs),
                         "runs": rs})
    device = torch.cuda.get_device_name() if args.device == "cuda" else "CPU only"
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {device}"
    source = str(args.data) if args.data is not None else f"synthetic ({args.synthetic} images)"
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"config": args.config, "data": source, "batch_size": args.batch_size,
                                         "workers": args.workers, "steps": args.steps, "warmup": args.warmup,
                                         "rounds": args.rounds, "complete": final, "device": args.device,
                                         "machine": machine, "overrides": common, "rows": rows}, indent=1))
    if not final:
        return
    print(f"\n{args.config}, data {source}, batch {args.batch_size}, {args.workers} workers, median of {args.rounds} "
          f"runs of {args.steps} steps after {args.warmup} warm-up; {machine}")
    print(f"| backbone | data.format | steps/s | images/s | vs {args.formats[0]} | data wait |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backbone']} | {r['format']} | {r['steps_per_s']:.2f} | {r['images_per_s']:.0f} | "
              f"{r['ratio']:.2f}x | {100 * r['data_wait_fraction']:.0f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="simclr_equimod", help="a config of scripts/pretrain/cifar")
    parser.add_argument("--backbones", nargs="+", default=["tiny_cnn", "resnet18"])
    parser.add_argument("--formats", nargs="+", default=["image_folder", "tensor"], help="ratios are to the first")
    parser.add_argument("--data", type=Path, default=None, help="an ImageFolder split (data.dataset=custom)")
    parser.add_argument("--synthetic", type=int, default=2048, help="else: this many built-in synthetic 32 px images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="ABAB repetitions; the median run is reported")
    parser.add_argument("--workers", type=int, default=2, help="data.num_workers (image_folder's worker processes)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads of the training process")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", default=None, help="default: 32-true on CPU, the config's on CUDA")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="more config overrides, e.g. backbone.kwargs.width=16")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = parser.parse_args()
    with config_errors_exit():  # before measuring: never replace a file this run did not write
        refuse_existing([p for p in (args.json,) if p is not None], args.overwrite)
    if args.threads is not None:  # on a loaded CPU, 2 threads fight other jobs' processes: 1 is steadier
        torch.set_num_threads(args.threads)

    data = ["data.dataset=custom", f"data.train_path={args.data}", "data.val_path=null", "data.download=false"] \
        if args.data is not None else ["data.dataset=synthetic", f"data.synthetic_size={args.synthetic}"]
    precision = args.precision or ("32-true" if args.device == "cpu" else None)
    common = [*data, f"optimizer.batch_size={args.batch_size}", f"data.num_workers={args.workers}",
              "checkpoint.enabled=false", "wandb.enabled=false", *([f"precision={precision}"] if precision else []),
              *args.overrides]
    runs: dict[str, dict[str, list[dict[str, float]]]] = {b: {f: [] for f in args.formats} for b in args.backbones}
    for rnd in range(args.rounds):
        for backbone in args.backbones:
            for fmt in args.formats:
                result = run_once(args.config, [*common, f"backbone.name={backbone}", f"data.format={fmt}"],
                                  args.steps, args.warmup, args.device)
                runs[backbone][fmt].append(result)
                print(f"round {rnd + 1}/{args.rounds} {backbone} {fmt}: {result['steps_per_s']:.2f} steps/s, "
                      f"data wait {100 * result['data_wait_fraction']:.0f} %", flush=True)
                report(args, common, runs, final=False)
    report(args, common, runs, final=True)


if __name__ == "__main__":
    main()
