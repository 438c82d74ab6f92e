#!/usr/bin/env bash
# Time and size of the two installs of the README, each into a new virtual environment (a temp folder,
# removed after): the demo's (scripts/setup_env.sh, no extras) and the tests' (dev,dali).
# Usage: bash benchmarks/install_size.sh   (docs/benchmarks/install.md has the figures)
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for extras in "" "dev,dali"; do
    start=$(date +%s)
    VENV="$work/venv" bash scripts/setup_env.sh "$extras"
    seconds=$(( $(date +%s) - start ))
    size=$(du -sm "$work/venv" | cut -f1)
    echo "extras=${extras:-none}: ${seconds} s, ${size} MiB ($("$work/venv/bin/python" -m pip list 2>/dev/null | tail -n +3 | wc -l) packages)"
    rm -rf "$work/venv"
done
