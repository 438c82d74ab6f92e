"""Where an evaluation report goes: one file per (evaluation, dataset, checkpoint), so evaluating
another checkpoint of the same run folder never overwrites an earlier checkpoint's report."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def report_path(checkpoint: str | Path, kind: str, dataset: str, suffix: str = ".json",
                folder: str | Path | None = None) -> Path:
    """`<folder>/<kind>_<dataset>-<checkpoint stem><suffix>`, `folder` defaulting to the checkpoint's,
    e.g. `linear_cifar10-last.json` beside `last.ckpt`."""
    checkpoint = Path(checkpoint)
    return Path(folder or checkpoint.parent) / f"{kind}_{dataset}-{checkpoint.stem}{suffix}"


def method_label(method: Any) -> str:
    """What a report calls the model: the method with its objectives, e.g. "simclr+equimod" (a
    backbone from elsewhere: its architecture and weights' layout, e.g. "timm:resnet18 (random-init)")."""
    return "+".join([str(method.cfg.method), *(method.cfg.get("objectives") or {})])
