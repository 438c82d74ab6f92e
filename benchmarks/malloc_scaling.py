"""CPU step time per sample across batch sizes, with glibc's malloc defaults and with the entry
points' settings (`solo_equimod.run.malloc`: MALLOC_MMAP_MAX_=0, a 1 GiB MALLOC_TRIM_THRESHOLD_).

Each measurement is a fresh process that times every batch size in turn (one process, as a training
run is one); the two settings alternate process by process (ABAB...) for `--rounds` rounds. Printed
per batch and setting: the median milliseconds per sample over the rounds (with the lowest and
highest round) and the minor page faults per step. Linear means the per-sample time stays flat: the
spread over the batch sizes (largest / smallest per-sample time) is the figure to hold within 1.2.

    python -m benchmarks.malloc_scaling --backbone tiny_cnn --batches 32 64 128 256 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.step_speed import cpu_name
from solo_equimod.run.malloc import SETTINGS

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, statistics, sys, torch
from benchmarks.step_time import build, time_step
out = {{}}
for batch_size in {batches}:
    torch.manual_seed(0)
    model, batch = build({method!r}, {backbone!r}, batch_size)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range({warmup}):
        time_step(model, batch, opt)
    times, faults = [], []
    for _ in range({steps}):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        times.append(time_step(model, batch, opt))
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    out[batch_size] = {{"step_s": statistics.median(times), "faults_per_step": statistics.median(faults)}}
print(json.dumps(out))
"""


def measure(args: argparse.Namespace, with_settings: bool) -> dict[str, dict[str, float]]:
    """One child process's {batch: {step_s, faults_per_step}}."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update({"PYTHONPATH": str(REPO), **(SETTINGS if with_settings else {})})
    code = CHILD.format(batches=args.batches, method=args.method, backbone=args.backbone, warmup=args.warmup,
                        steps=args.steps)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="tiny_cnn")
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--batches", nargs="+", type=int, default=[32, 64, 128, 256])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/malloc_scaling.json"))
    args = parser.parse_args()
    labels = {False: "glibc defaults", True: "MALLOC_MMAP_MAX_=0 + trim 1 GiB"}
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for r in range(args.rounds):
        for with_settings in (False, True):
            runs[with_settings].append(measure(args, with_settings))
            print(f"round {r + 1}/{args.rounds} {labels[with_settings]} done", flush=True)
    rows = []
    for with_settings, results in runs.items():
        for b in args.batches:
            per_sample = [1000 * res[str(b)]["step_s"] / b for res in results]
            rows.append({"setting": labels[with_settings], "batch": b, "ms_per_sample": statistics.median(per_sample),
                         "round_min": min(per_sample), "round_max": max(per_sample),
                         "faults_per_step": statistics.median(res[str(b)]["faults_per_step"] for res in results)})
    spread = {labels[s]: max(r["ms_per_sample"] for r in rows if r["setting"] == labels[s])
              / min(r["ms_per_sample"] for r in rows if r["setting"] == labels[s]) for s in runs}
    machine = f"{cpu_name()}, {os.cpu_count()} cores"
    result = {"backbone": args.backbone, "method": args.method, "steps": args.steps, "rounds": args.rounds,
              "machine": machine, "rows": rows, "per_sample_spread": spread}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"{args.method}, {args.backbone}, median of {args.rounds} processes per setting (ABAB), {machine}")
    print("| setting | batch | ms/sample | rounds | page faults/step |\n|---|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['setting']} | {r['batch']} | {r['ms_per_sample']:.2f} | {r['round_min']:.2f}-{r['round_max']:.2f} "
              f"| {r['faults_per_step']:.0f} |")
    print("per-sample spread over the batch sizes (largest / smallest): "
          + ", ".join(f"{k}: {v:.2f}" for k, v in spread.items()))


if __name__ == "__main__":
    main()
