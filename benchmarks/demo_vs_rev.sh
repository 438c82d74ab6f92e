#!/usr/bin/env bash
# The demo (scripts/demo.sh without its install step) of this tree and of git revision REV, run at
# the same time on the same machine, one CPU thread each, so their wall times compare under one load.
# Prints and records both wall times and linear top-1 figures in benchmarks/results/demo_vs_rev.json.
# Usage: bash benchmarks/demo_vs_rev.sh REV   (needs .venv: bash scripts/setup_env.sh dev)
set -euo pipefail
cd "$(dirname "$0")/.."
rev="${1:?usage: bash benchmarks/demo_vs_rev.sh REV}"
work="$(mktemp -d)"
trap 'git worktree remove --force "$work/rev" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/rev" "$rev" >/dev/null
mkdir -p "$work/this" && git ls-files -z | xargs -0 cp --parents -P -t "$work/this"  # the working tree, as is
for tree in rev this; do
  ln -s "$PWD/.venv" "$work/$tree/.venv"  # the tree's own code comes first on sys.path (scripts run from it)
  sed '/setup_env.sh/d' "$work/$tree/scripts/demo.sh" > "$work/$tree/scripts/demo_steps.sh"
done
run() {  # tree -> wall milliseconds in $work/<tree>.ms, output in $work/<tree>.log
  local start
  start=$(date +%s%N)
  (cd "$work/$1" && OMP_NUM_THREADS=1 PYTHONPATH=. bash scripts/demo_steps.sh > "$work/$1.log" 2>&1) || { tail -n 20 "$work/$1.log"; return 1; }
  echo "$(( ($(date +%s%N) - start) / 1000000 ))" > "$work/$1.ms"
}
run rev & a=$!; run this & b=$!; wait "$a"; wait "$b"
.venv/bin/python - "$work" "$rev" <<'PY'
import json, platform, sys
from pathlib import Path
work, rev = Path(sys.argv[1]), sys.argv[2]
result = {"machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, one thread per demo",
          "load_average_at_end": open("/proc/loadavg").read().split()[:3]}
for tree, label in (("rev", rev), ("this", "working tree")):
    run = work / tree / "trained_models" / "simclr_equimod-synthetic"
    top1 = {k: json.loads((run / f"{k}_synthetic-last.json").read_text())["top1"] for k in ("linear", "linear_random_init")}
    result[label] = {"wall_s": int((work / f"{tree}.ms").read_text()) / 1000, **{f"{k}_top1": v for k, v in top1.items()}}
result["wall_ratio_this_to_rev"] = result["working tree"]["wall_s"] / result[rev]["wall_s"]
out = Path("benchmarks/results/demo_vs_rev.json")
out.write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps(result, indent=2))
PY
