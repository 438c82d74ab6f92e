#!/usr/bin/env bash
# Creates the virtual environment $VENV (default .venv, if absent) and installs solo-equimod into it,
# editable, with the given extras (none: what the demo needs), torch pinned by constraints.txt.
# Usage: bash scripts/setup_env.sh [dev,dali,docs]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
spec="."
[ -z "${1:-}" ] || spec=".[$1]"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -c constraints.txt -e "$spec"
