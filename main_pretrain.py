"""Pretrain a method: `python main_pretrain.py --config-name byol_equimod.yaml` (the paper's CIFAR-10
recipe; `--config-name imagenet/byol_equimod` for another dataset's, `--config-path DIR` for your own).
Installed, the same command is `solo-equimod-pretrain` (solo_equimod.cli).

Any key can be overridden on the command line (`optimizer.lr=1.0 data.num_workers=2`)."""

from __future__ import annotations

from pathlib import Path

from solo_equimod.entry import pretrain

if __name__ == "__main__":
    pretrain(script_dir=Path(__file__).resolve().parent)
