"""Seconds per epoch of a CIFAR-10-sized pretraining epoch, eager and compiled, with the fraction of
the device's peak bf16 throughput it achieves (not a test; the GPU run of benchmarks/gpu_checks.sh).

Each run is one real `Trainer.fit` epoch of a CIFAR config (`scripts/pretrain/cifar/<method>.yaml`)
on `--images` generated 32 px images (data.dataset=synthetic) at `--precision` (bf16-mixed), with
`compile` off or on (`solo_equimod.run.speed`), through the tensor loader (data.format=tensor: the set in
device memory, augmented in batches on the device) and, for the ratio, once through the torchvision
DataLoader path (data.format=image_folder, `--workers` processes). Printed per run: the epoch's wall
seconds (compiling included), images/s over the whole epoch and over its steady steps (after
`--warmup`), and the achieved fraction of peak: FLOPs of one training step (forward + backward of
every network, counted by `torch.utils.flop_counter.FlopCounterMode` on an eager copy) x steady
steps/s / the device's peak dense bf16 FLOP/s (`--peak-tflops`, else a table of known devices).

    python benchmarks/epoch_time.py --device cuda --backbone resnet18 --batch-size 512 --images 50000
    python benchmarks/epoch_time.py --device cpu --backbone tiny_cnn --batch-size 64 --images 512 \\
        --peak-tflops 0.1 +backbone.kwargs.width=8   # smoke test
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from loader_training import StepTimer
from step_time import compose_run
from torch.utils.flop_counter import FlopCounterMode

from solo_equimod.config.schema import validate
from solo_equimod.data.pretrain import PretrainDataModule
from solo_equimod.methods import METHODS
from solo_equimod.objectives.compose import pipeline_requests
from solo_equimod.run.speed import apply_speed_settings

# peak dense bf16 tensor FLOP/s (no sparsity), from the vendors' data sheets; matched by substring of the device name
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}


class EpochTimer(pl.Callback):
    """Wall seconds of the first training epoch (the device synchronised at its end)."""

    def __init__(self, sync_cuda: bool) -> None:
        self.sync_cuda, self.seconds, self._start = sync_cuda, 0.0, 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.sync_cuda:
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self._start


def step_flops(model: pl.LightningModule, datamodule: PretrainDataModule, device: str) -> int:
    """FLOPs of one training step (forward and backward) of an eager copy of `model` on one batch of
    the tensor loader, under the run's autocast."""
    eager = copy.deepcopy(model).to(device)
    eager.log = eager.log_dict = lambda *a, **k: None  # no Trainer attached: logging is a no-op
    batch = move_data_to_device(next(iter(datamodule.train_dataloader())), torch.device(device))  # built on the CPU
    with FlopCounterMode(display=False) as counter, torch.autocast(device, dtype=torch.bfloat16):
        eager.training_step(batch, 0).backward()
    return int(counter.get_total_flops())


def run_epoch(method: str, overrides: list[str], device: str, warmup: int, count_flops: bool) -> dict[str, Any]:
    """One epoch; its wall seconds, steady images/s and (when `count_flops`) the FLOPs of a step."""
    cfg = validate(compose_run(method, overrides))
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = PretrainDataModule(cfg, pipeline_requests(cfg))
    model = METHODS[cfg.method](cfg)
    model.prepare_objectives(datamodule)
    flops = step_flops(model, datamodule, device) if count_flops else None
    apply_speed_settings(model, cfg)
    steps, epoch = StepTimer(sync_cuda=device == "cuda"), EpochTimer(sync_cuda=device == "cuda")
    trainer = pl.Trainer(max_epochs=1, accelerator="gpu" if device == "cuda" else "cpu", devices=1,
                         precision=cfg.precision, logger=False, callbacks=[steps, epoch], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         num_sanity_val_steps=0)
    trainer.fit(model, datamodule=datamodule)
    timed = [w + c for w, c in steps.steps[warmup:]]
    batch = int(cfg.optimizer.batch_size)
    return {"epoch_s": epoch.seconds, "steps": len(steps.steps),
            "images_per_s_epoch": len(steps.steps) * batch / epoch.seconds,
            "steady_step_s": statistics.median(timed), "images_per_s_steady": batch / statistics.median(timed),
            "step_flops": flops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["simclr", "simclr_equimod"])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--images", type=int, default=50000)
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--workers", type=int, default=8, help="image_folder's DataLoader worker processes")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the steady figures")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s of the device")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="more config overrides, e.g. backbone.kwargs.width=8")
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    common = ["data.dataset=synthetic", f"data.synthetic_size={args.images}", f"optimizer.batch_size={args.batch_size}",
              f"backbone.name={args.backbone}", "+data.num_classes=10",
              f"precision={args.precision}", "checkpoint.enabled=false", "wandb.enabled=false",
              f"data.num_workers={args.workers}", *args.overrides]
    plan = [(m, "tensor", c) for m in args.methods for c in (False, True)] + [(args.methods[-1], "image_folder", False)]
    rows = []
    for method, fmt, compiled in plan:
        r = run_epoch(method, [*common, f"data.format={fmt}", f"compile={str(compiled).lower()}"], args.device,
                      args.warmup, count_flops=fmt == "tensor" and not compiled)
        flops = r["step_flops"] if r["step_flops"] is not None else \
            next(x["step_flops"] for x in rows if x["method"] == method)
        achieved = None if peak is None else flops / r["steady_step_s"] / (peak * 1e12)
        rows.append({"method": method, "format": fmt, "compile": compiled, **r, "step_flops": flops,
                     "peak_fraction": achieved})
        print(f"{method} {fmt} compile={compiled}: {r['epoch_s']:.1f} s/epoch, {r['images_per_s_epoch']:.0f} images/s "
              f"(steady {r['images_per_s_steady']:.0f}), {flops / 1e12:.3f} TFLOP/step"
              + ("" if achieved is None else f", {100 * achieved:.1f} % of peak bf16"), flush=True)
    ratio = next(r["epoch_s"] for r in rows if r["format"] == "image_folder") / \
        next(r["epoch_s"] for r in rows if r["format"] == "tensor" and r["method"] == args.methods[-1]
             and not r["compile"])
    print(f"image_folder epoch / tensor epoch ({args.methods[-1]}, eager): {ratio:.2f}x")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": name, "peak_bf16_tflops": peak, "backbone": args.backbone,
                                         "batch_size": args.batch_size, "images": args.images,
                                         "precision": args.precision, "overrides": args.overrides, "rows": rows,
                                         "image_folder_over_tensor_epoch": ratio}, indent=1))


if __name__ == "__main__":
    main()
