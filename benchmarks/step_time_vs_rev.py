"""Training-step time of one method in two commits (or a commit and this tree), side by side in one run.

Each tree times its own `benchmarks/step_time.py` (`build`, `time_step`: same batch, same optimiser,
each tree's own batch format) in a fresh process; the two trees alternate round by round, so load
on the machine affects both alike. Prints the medians and the ratio, writes JSON.

    python benchmarks/step_time_vs_rev.py --rev e2a2387 --against 281f4ad --method simclr_equimod --backbone resnet18
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from solo_equimod.errors import config_errors_exit
from solo_equimod.run.atomic import refuse_existing

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, torch
from benchmarks.step_time import build, time_step
torch.manual_seed(0)
model, batch = build({method!r}, {backbone!r}, {batch_size})
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
times = [time_step(model, batch, opt) for _ in range({warmup} + {steps})][{warmup}:]
print(json.dumps(times))
"""


def time_tree(tree: Path, args: argparse.Namespace) -> list[float]:
    code = CHILD.format(method=args.method, backbone=args.backbone, batch_size=args.batch_size, warmup=args.warmup,
                        steps=args.steps)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", required=True, help="the earlier commit to compare with")
    parser.add_argument("--against", default=None, help="the later commit (default: this tree as it is)")
    parser.add_argument("--method", default="simclr_equimod")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round and tree")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/step_time_vs_rev.json"))
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = parser.parse_args()
    with config_errors_exit():  # before measuring: never replace a file this run did not write
        refuse_existing([args.out], args.overwrite)
    new_name = args.against or "this tree"
    with tempfile.TemporaryDirectory() as tmp:
        revs = [args.rev, *([args.against] if args.against else [])]
        checkouts = {rev: Path(tmp) / f"rev{i}" for i, rev in enumerate(revs)}
        for rev, path in checkouts.items():
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev], check=True,
                           capture_output=True)
        try:
            trees = {args.rev: checkouts[args.rev], new_name: checkouts.get(args.against, REPO)}
            times: dict[str, list[float]] = {name: [] for name in trees}
            for round_ in range(args.rounds):
                for name, tree in (trees.items() if round_ % 2 == 0 else reversed(trees.items())):
                    times[name] += time_tree(tree, args)
                    print(f"round {round_ + 1}/{args.rounds} {name}: median {statistics.median(times[name]):.3f} s",
                          flush=True)
        finally:
            for path in checkouts.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=True)
    old_s, new_s = statistics.median(times[args.rev]), statistics.median(times[new_name])
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU"
    result = {"method": args.method, "backbone": args.backbone, "batch_size": args.batch_size, "rev": args.rev,
              "against": new_name, "steps_per_tree": len(times[args.rev]), "machine": machine, "rev_s": old_s,
              "against_s": new_s, "ratio": new_s / old_s, "times": times}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"{args.method}, {args.backbone}, batch {args.batch_size}, median of {len(times[args.rev])} steps per tree, "
          f"{machine}")
    print(f"| tree | s/step |\n|---|---|\n| {args.rev} | {old_s:.3f} |\n| {new_name} | {new_s:.3f} |\n"
          f"ratio {new_name} / {args.rev}: {new_s / old_s:.3f}")


if __name__ == "__main__":
    main()
