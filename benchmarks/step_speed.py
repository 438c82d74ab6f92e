"""Step time of the speed settings side by side in one run: eager vs compiled, fp32 vs bf16, and the
library's SimCLR step against a hand-written lightly loop doing the same work.

Every variant of one (method, backbone) is built from the same seeded weights and batch
(`step_time.build`), and the variants alternate step by step (ABAB...), so machine load affects all
alike; the timed steps are split into rounds, and the table gives the median step and the spread
(lowest and highest round median). bf16 is the training step under CPU autocast (bfloat16), as
`precision: bf16-mixed` runs it; compiled is `compile: true` (`solo_equimod.run.speed`).

The lightly peer (`--peer`, SimCLR only): the same backbone and projection head (lightly's
`SimCLRProjectionHead`), lightly's `NTXentLoss`, and a linear classifier on the detached features,
which is what the library's `training_step` computes; compiled with `nn.Module.compile` where the
library is. Its ratio (library / peer) at or below 1.0 means the library adds no overhead.

    python -m benchmarks.step_speed --backbones tiny_cnn resnet18 --methods simclr simclr_equimod --peer
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch
from lightly.loss import NTXentLoss
from omegaconf import DictConfig
from torch import nn

from benchmarks.step_time import REPO, build, time_step
from solo_equimod.run.malloc import reexec_with_malloc_settings
from solo_equimod.run.speed import apply_speed_settings


class LightlySimCLR(nn.Module):
    """The hand-written peer: backbone -> projector -> NT-Xent on both views, + a linear classifier
    on the detached features (cross-entropy), one optimiser over all of it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone = copy.deepcopy(model.backbone)
        self.projector = copy.deepcopy(model.projector)  # lightly's SimCLRProjectionHead, as the library builds it
        self.classifier = nn.Linear(model.features_dim, int(model.cfg.data.num_classes))
        self.criterion = NTXentLoss(temperature=float(model.kwargs.temperature))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        views, targets = batch["views"], batch["target"]
        h = self.backbone(torch.cat(views))
        z1, z2 = self.projector(h).chunk(2)
        logits = self.classifier(h.detach())
        return self.criterion(z1, z2) + nn.functional.cross_entropy(logits, targets.repeat(2))


def variants(model: nn.Module, batch: dict, peer: bool) -> dict[str, tuple[nn.Module, dict, Callable[[], Any]]]:
    """label -> (model, batch, context of its step): eager/compiled x fp32/bf16, and the peer's."""
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    fp32 = contextlib.nullcontext
    compiled = apply_speed_settings(copy.deepcopy(model), DictConfig({"compile": True}))
    out = {"eager fp32": (model, batch, fp32), "compiled fp32": (compiled, batch, fp32),
           "eager bf16": (copy.deepcopy(model), batch, bf16), "compiled bf16": (copy.deepcopy(compiled), batch, bf16)}
    if peer:
        lightly = LightlySimCLR(model)
        lightly_compiled = copy.deepcopy(lightly)
        for net in (lightly_compiled.backbone, lightly_compiled.projector, lightly_compiled.classifier):
            net.compile(dynamic=None)
        out |= {"lightly eager fp32": (lightly, batch, fp32), "lightly compiled fp32": (lightly_compiled, batch, fp32)}
    return out


def interleaved(runs: dict[str, tuple[nn.Module, dict, Callable[[], Any]]], steps: int, warmup: int,
                rounds: int) -> dict[str, list[list[float]]]:
    """Seconds of each timed step, per label and round; labels alternate step by step."""
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-3) for k, (m, _, _) in runs.items()}
    for _ in range(warmup):  # compiles (the compiled variants' first steps), then warm caches
        for k, (m, b, ctx) in runs.items():
            with ctx():
                time_step(m, b, opts[k])
    out: dict[str, list[list[float]]] = {k: [] for k in runs}
    for r in range(rounds):
        for k in runs:
            out[k].append([])
        for _ in range(steps):
            for k, (m, b, ctx) in runs.items():
                with ctx():
                    out[k][-1].append(time_step(m, b, opts[k]))
        print(f"round {r + 1}/{rounds}", flush=True)
    return out


def summary(times: list[list[float]]) -> dict[str, float]:
    """Median over all timed steps; spread: the lowest and highest round median."""
    medians = [statistics.median(t) for t in times]
    return {"step_s": statistics.median([x for t in times for x in t]), "round_min_s": min(medians),
            "round_max_s": max(medians)}


def cpu_name() -> str:
    """The CPU's model name (Linux), else what `platform` knows."""
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["tiny_cnn", "resnet18"])
    parser.add_argument("--methods", nargs="+", default=["simclr", "simclr_equimod"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--peer", action="store_true", help="also the hand-written lightly loop (SimCLR rows)")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/step_speed.json"))
    args = parser.parse_args()
    rows = []
    for backbone in args.backbones:
        for method in args.methods:
            torch.manual_seed(0)
            model, batch = build(method, backbone, args.batch_size)
            start = time.perf_counter()
            times = interleaved(variants(model, batch, args.peer and method == "simclr"), args.steps, args.warmup,
                                args.rounds)
            print(f"{backbone} {method}: {time.perf_counter() - start:.0f} s (compiling included)", flush=True)
            stats = {k: summary(v) for k, v in times.items()}
            for label, s in stats.items():
                peer = label.replace("lightly ", "") if label.startswith("lightly") else None
                ratio = stats[peer]["step_s"] / s["step_s"] if peer else s["step_s"] / stats["eager fp32"]["step_s"]
                rows.append({"backbone": backbone, "method": method, "variant": label, **s, "ratio": ratio,
                             "ratio_of": f"library {peer} / this" if peer else "this / eager fp32"})
    machine = f"{cpu_name()} ({platform.machine()}), {torch.get_num_threads()} threads"
    result = {"batch_size": args.batch_size, "steps": args.steps, "rounds": args.rounds, "machine": machine,
              "torch": torch.__version__, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"batch {args.batch_size}, {args.rounds} rounds x {args.steps} steps interleaved, {machine}")
    print("| backbone | method | variant | s/step (median) | round medians | ratio | of |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backbone']} | {r['method']} | {r['variant']} | {r['step_s']:.3f} | {r['round_min_s']:.3f}-"
              f"{r['round_max_s']:.3f} | {r['ratio']:.2f} | {r['ratio_of']} |")


if __name__ == "__main__":
    reexec_with_malloc_settings()  # as the entry points run: solo_equimod/run/malloc.py
    main()
