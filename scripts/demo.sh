#!/usr/bin/env bash
# The demo: install, pretrain SimCLR+EquiMod on the built-in synthetic dataset (no download),
# then linear-evaluate its frozen backbone. A few minutes on a laptop CPU. Run again, it continues
# (or, finished, keeps) the same run through auto_resume instead of being refused its run folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh dev
.venv/bin/python main_pretrain.py --config-path scripts/pretrain/synthetic --config-name simclr_equimod.yaml auto_resume.enabled=true "$@"
.venv/bin/python main_linear.py --config-path scripts/linear/synthetic --config-name linear.yaml
