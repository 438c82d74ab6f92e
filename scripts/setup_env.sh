#!/usr/bin/env bash
# Creates .venv (if absent) and installs solo-equimod with the given extras, torch pinned by
# constraints.txt. Usage: bash scripts/setup_env.sh dev,dali
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[${extras}]"
