#!/usr/bin/env bash
# The demo: install, pretrain SimCLR+EquiMod on the built-in synthetic dataset (no download),
# then linear-evaluate its frozen backbone. A few minutes on a laptop CPU. Run again, it continues
# (or, finished, keeps) the same run through auto_resume instead of being refused its run folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh  # no extras: the demo needs neither pytest nor DALI
# 512-wide SimCLR projector and g' instead of the paper's 2048: on a CPU the heads, not tiny_cnn, set the step time
.venv/bin/python main_pretrain.py --config-name synthetic/simclr_equimod auto_resume.enabled=true \
    method_kwargs.proj_hidden_dim=512 objectives.equimod.proj_hidden_dim=512 "$@"
# overwrite=true: run again, the demo replaces the reports it wrote into its own run folder
.venv/bin/python main_linear.py --config-name synthetic/linear overwrite=true
# the baseline: the same backbone freshly initialised, through the same linear protocol
.venv/bin/python main_linear.py --config-name synthetic/linear random_init=true overwrite=true
.venv/bin/python - <<'PY'
import json
from pathlib import Path
run = Path("trained_models/simclr_equimod-synthetic")
top1 = {kind: json.loads((run / f"{kind}_synthetic-last.json").read_text())["top1"] for kind in ("linear", "linear_random_init")}
print(f"linear top-1 on the synthetic validation split (10 classes): pretrained {top1['linear']:.1f} % "
      f"vs the same backbone at random init {top1['linear_random_init']:.1f} %")
PY
