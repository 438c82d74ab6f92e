#!/usr/bin/env bash
# Fetch and verify every zoo checkpoint trained on the built-in synthetic dataset into the cache
# ($SOLO_EQUIMOD_CACHE or ~/.cache/solo_equimod; pass --cache DIR to choose) and print their paths.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
for name in $("$PY" -m solo_equimod.zoo list --dataset synthetic --names); do
  "$PY" -m solo_equimod.zoo "$@" download "$name"
done
