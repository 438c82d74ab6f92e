#!/usr/bin/env bash
# The test suite, from the same install as a user's (DALI included: its CPU pipelines are tested; the docs extra: the site is built).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh dev,dali,docs
.venv/bin/python -m pytest -q "$@"
