#!/usr/bin/env bash
# The demo: install, pretrain SimCLR+EquiMod on the built-in synthetic dataset (no download),
# then linear-evaluate its frozen backbone. A few minutes on a laptop CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh dev
.venv/bin/python main_pretrain.py --config-path scripts/pretrain/synthetic --config-name simclr_equimod.yaml "$@"
.venv/bin/python main_linear.py --config-path scripts/linear/synthetic --config-name linear.yaml
