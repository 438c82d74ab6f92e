#!/usr/bin/env bash
# The paper's CIFAR-10 recipe (EquiMod Sec. 3.1, docs/objectives/equimod.md "Recipes") for one baseline and its
# +EquiMod version, then the linear evaluation (Sec. 3.2.1 + the official code's views), printed next
# to the paper's Table 1. Needs a GPU machine and CIFAR-10 in DATA (downloaded there if absent).
#
#   bash benchmarks/reproduce_cifar10.sh [simclr|byol|barlow_twins] [DATA] [pretraining overrides...]
#
# Table 1 came from the official code, whose EquiMod loss is the 4N-row NT-Xent: LOSS_VARIANT=official
# (default here); LOSS_VARIANT=paper runs Eq. 4 as printed (the library's default). ACCELERATOR
# (default gpu) and LINEAR_OVERRIDES (space-separated main_linear.py overrides) are optional.
set -euo pipefail
cd "$(dirname "$0")/.."
method="${1:-simclr}"
data="${2:-./datasets}"
shift $(( $# < 2 ? $# : 2 ))
case "$method" in simclr|byol|barlow_twins) ;; *) echo "method must be simclr, byol or barlow_twins, got '$method'" >&2; exit 2;; esac
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || { bash scripts/setup_env.sh dali; PY=.venv/bin/python; }
out="trained_models/reproduce-cifar10"
for run in "$method" "${method}_equimod"; do
  extra=()
  [ "$run" != "$method" ] && extra=("objectives.equimod.loss_variant=${LOSS_VARIANT:-official}")
  "$PY" main_pretrain.py --config-path scripts/pretrain/cifar --config-name "$run.yaml" name="$run" \
      checkpoint.dir="$out" data.train_path="$data" data.val_path="$data" accelerator="${ACCELERATOR:-gpu}" auto_resume.enabled=true \
      "${extra[@]}" "$@"
  # shellcheck disable=SC2086
  "$PY" main_linear.py --config-path scripts/linear/cifar --config-name linear.yaml accelerator="${ACCELERATOR:-gpu}" \
      pretrained_feature_extractor="$out/$run/last.ckpt" data.train_path="$data" data.val_path="$data" \
      output="$out/$run/linear_table1.json" overwrite=true ${LINEAR_OVERRIDES:-}  # its own run folder
done
"$PY" - "$method" "$out" <<'PY'
import json, sys
method, out = sys.argv[1], sys.argv[2]
paper = {"simclr": (90.96, 92.79), "byol": (90.44, 91.57), "barlow_twins": (86.94, 88.87)}[method]  # Table 1
ours = [json.load(open(f"{out}/{run}/linear_table1.json"))["top1"] for run in (method, f"{method}_equimod")]
print(f"| CIFAR-10 linear top-1 | {method} | {method} + EquiMod | gain |\n|---|---|---|---|")
print(f"| paper, Table 1 | {paper[0]:.2f} | {paper[1]:.2f} | {paper[1] - paper[0]:+.2f} |")
print(f"| this run | {ours[0]:.2f} | {ours[1]:.2f} | {ours[1] - ours[0]:+.2f} |")
PY
