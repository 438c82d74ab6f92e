"""Turn a trained checkpoint and its evaluation JSON into a slim weights file and a manifest entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from solo_equimod import atomic
from solo_equimod.checkpoints import load_method
from solo_equimod.zoo.fetch import sha256_of
from solo_equimod.zoo.manifest import ZooEntry

PROTOCOL_KEYS = ("epochs", "seed", "batch_size")  # numbers in an eval report that describe, not measure


def slim_state(checkpoint: str | Path, half: bool) -> dict[str, Any]:
    """Config + weights of `checkpoint` without optimizer, scheduler or loop state; with `half`,
    learnable parameters are stored in fp16 while buffers (BatchNorm and EquiMod parameter
    statistics) stay fp32, so the normalisation is exact; loading casts back to fp32."""
    model = load_method(checkpoint)
    params = {name for name, _ in model.named_parameters()}
    state = {k: (v.half() if half and k in params and v.is_floating_point() else v).clone()
             for k, v in model.state_dict().items()}
    return {"hyper_parameters": {"cfg": dict(model.hparams["cfg"])}, "state_dict": state}


def export_checkpoint(checkpoint: str | Path, eval_json: str | Path, name: str, out_file: str | Path,
                      url: str, metrics_command: str, pretrain_command: str = "", notes: str = "",
                      half: bool = True) -> ZooEntry:
    """Write the slim weights to `out_file` (atomically) and return its manifest entry; the
    metrics are the evaluation JSON's numbers (e.g. `top1`, `top5` from `main_linear.py`)."""
    state = slim_state(checkpoint, half)
    report = json.loads(Path(eval_json).read_text())
    metrics = {k: v for k, v in report.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in PROTOCOL_KEYS}
    if not metrics:
        raise ValueError(f"{eval_json} holds no numeric metrics")
    out_file = atomic.torch_save(state, out_file)
    cfg = state["hyper_parameters"]["cfg"]
    return ZooEntry(name=name, method=cfg["method"], dataset=cfg["data"]["dataset"], backbone=cfg["backbone"]["name"],
                    epochs=int(cfg["max_epochs"]), config=cfg, metrics=metrics, metrics_command=metrics_command,
                    url=url, sha256=sha256_of(out_file), size=out_file.stat().st_size,
                    pretrain_command=pretrain_command, notes=notes)
