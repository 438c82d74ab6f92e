"""Turn a trained checkpoint and its evaluation JSON into a slim weights file and a manifest entry."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from solo_equimod.run import atomic
from solo_equimod.run.checkpoints import load_method, save_method
from solo_equimod.zoo.fetch import sha256_of
from solo_equimod.zoo.manifest import ZooEntry

# numbers in an eval report that describe the protocol, not measure the model
PROTOCOL_KEYS = ("epochs", "seed", "batch_size", "num_classes", "min_lr")


def export_checkpoint(checkpoint: str | Path, eval_json: str | Path, name: str, out_file: str | Path,
                      url: str, metrics_command: str, pretrain_command: str = "", notes: str = "",
                      half: bool = True, overwrite: bool = False) -> ZooEntry:
    """Write the slim weights to `out_file` (atomically) and return its manifest entry; the
    metrics are the evaluation JSON's numbers (e.g. `top1`, `top5` from `main_linear.py`). An
    existing `out_file` is a ConfigError unless `overwrite` (checked before anything is read)."""
    atomic.refuse_existing([out_file], overwrite)
    model = load_method(checkpoint)
    report = json.loads(Path(eval_json).read_text())
    metrics = {k: v for k, v in report.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in PROTOCOL_KEYS}
    if not metrics:
        raise ValueError(f"{eval_json} holds no numeric metrics")
    out_file = save_method(model, out_file, half)
    cfg = OmegaConf.to_container(model.cfg, resolve=True)
    method = "_".join([cfg["method"], *cfg.get("objectives", {})])  # e.g. simclr_equimod, as run names
    return ZooEntry(name=name, method=method, dataset=cfg["data"]["dataset"], backbone=cfg["backbone"]["name"],
                    epochs=int(cfg["max_epochs"]), config=cfg, metrics=metrics, metrics_command=metrics_command,
                    url=url, sha256=sha256_of(out_file), size=out_file.stat().st_size,
                    pretrain_command=pretrain_command, notes=notes)
