"""Linear evaluation of a pretrained backbone:
`python main_linear.py --config-name linear.yaml pretrained_feature_extractor=PATH` (CIFAR-10;
`--config-name synthetic/linear` for the built-in data, `--config-path DIR` for your own).
Installed, the same command is `solo-equimod-linear` (solo_equimod.cli)."""

from __future__ import annotations

from pathlib import Path

from solo_equimod.entry import linear

if __name__ == "__main__":
    linear(script_dir=Path(__file__).resolve().parent)
