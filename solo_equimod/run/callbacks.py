"""Crash-safety pieces for the pretraining Trainer: atomic checkpoint files, checkpoints every N
optimiser steps, and a stop on a non-finite loss."""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterable, Optional

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from solo_equimod.run import atomic

STEP_CHECKPOINT_DIR = "steps"
_STEP_FILE = re.compile(r"^epoch=(\d+)-step=(\d+)\.ckpt$")


def free_name(folder: Path, base: str) -> str:
    """`base`, or `base-2`, `base-3`, ... : the first that does not exist in `folder`."""
    name, n = base, 1
    while (folder / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def link_checkpoint(path: Path, target: Path) -> None:
    """`target` := `path`: a hard link (a copy where links are not supported) made under a temporary
    name of its own and renamed over `target`, so the atomic writer's `.tmp` is never a link."""
    tmp = target.with_name(target.name + ".link-tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:
        shutil.copyfile(path, tmp)
    os.replace(tmp, target)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes `path.tmp` beside the target, fsyncs it and renames it over the target.

    Lightning's own save goes through an fsspec transaction whose temporary file lives in the
    system temp folder and is *moved* (copied, when /tmp is another filesystem) onto the target,
    so a kill during that copy leaves a truncated checkpoint; a same-folder rename cannot."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic.torch_save(checkpoint, path)


class StepCheckpoint(pl.Callback):
    """Saves `steps/epoch=E-step=S.ckpt` every `every_n_steps` optimiser steps, keeping the newest `keep`,
    and points the run folder's `last.ckpt` at it, so `last.ckpt` is always the newest checkpoint.

    It saves at the start of the next batch, not at the end of the step like `ModelCheckpoint`:
    Lightning calls callbacks' `on_train_batch_end` before the module's, where BYOL-style
    methods apply the momentum update, so a checkpoint taken there would miss that update."""

    def __init__(self, dirpath: str | Path, every_n_steps: int, keep: int = 1) -> None:
        if every_n_steps < 1 or keep < 1:
            raise ValueError(f"checkpoint.every_n_steps and checkpoint.keep_steps must be >= 1, got {every_n_steps} "
                             f"and {keep} (checkpoint.every_n_steps=0 turns step checkpoints off)")
        self.dirpath = Path(dirpath) / STEP_CHECKPOINT_DIR
        self.every_n_steps = every_n_steps
        self.keep = keep
        self._last_saved = -1
        self._saving = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_saved = trainer.global_step  # a resumed run does not re-save the step it came from

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        step = trainer.global_step
        # batch_idx 0: the state equals the previous epoch's end, which the epoch checkpoint holds
        if batch_idx == 0 or step % self.every_n_steps or step == self._last_saved:
            return
        self._saving = True
        try:
            trainer.save_checkpoint(self.dirpath / f"epoch={trainer.current_epoch}-step={step}.ckpt")
        finally:
            self._saving = False
        self._last_saved = step
        if trainer.is_global_zero:
            link_checkpoint(self.dirpath / f"epoch={trainer.current_epoch}-step={step}.ckpt",
                            self.dirpath.parent / "last.ckpt")
            self._prune()

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if not self._saving:
            return
        # Lightning already counted the next batch as "ready"; record the state between two
        # batches (ready == completed), else its restart logic shifts the logging step by one
        progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]
        for counts in (progress["total"], progress["current"]):
            counts["ready"] = counts["completed"]

    def _prune(self) -> None:
        saved = sorted((int(m[2]), p) for p in self.dirpath.glob("*.ckpt") if (m := _STEP_FILE.match(p.name)))
        for _, path in saved[:-self.keep]:
            path.unlink(missing_ok=True)


# A checkpoint counts as diverged when a parameter is non-finite or its largest |parameter| exceeds
# this multiple of the model's largest |parameter| at the session's start: training rarely grows
# weights by 100x, a divergent step (e.g. optimizer.lr=1e30) by many orders of magnitude.
DIVERGED_GROWTH = 100.0
# The largest optimizer.lr of the shipped recipes: the lower lr the stop suggests never exceeds it.
SUGGESTED_LR_CAP = 1.0


def largest_abs(tensors: Iterable[torch.Tensor]) -> float:
    """The largest |value| over floating-point `tensors`: nan if any value is nan, 0 if none."""
    peaks = [t.detach().abs().amax().float().cpu() for t in tensors if t.is_floating_point() and t.numel()]
    return float(torch.stack(peaks).amax()) if peaks else 0.0


class NonFiniteLossGuard(pl.Callback):
    """Stops training at the first non-finite loss, before any later checkpoint is written, naming
    the step, the value of every logged loss term and the model's largest |parameter|, with advice
    that works as written: a new run under a fresh, unused `name` with a lower `optimizer.lr` (a
    changed setting is another run, which auto_resume never continues), and resuming only when the
    run's newest checkpoint (`checkpoint.dir/name/last.ckpt`) is healthy: every parameter finite and
    the largest |parameter| within DIVERGED_GROWTH x that of the session's start. Reads the run's
    settings from the module's `hparams["cfg"]` (as `BaseMethod` saves them)."""

    def __init__(self) -> None:
        self._start_largest = math.nan

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_largest = largest_abs(pl_module.parameters())

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        bad = loss is not None and not math.isfinite(float(loss))
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):  # every rank stops together
            return
        terms = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train_")}
        listed = ", ".join(f"{k}={v:.6g}" for k, v in sorted(terms.items())) or "none logged"
        value = float(loss) if bad else "on another process"
        cfg = pl_module.hparams["cfg"]
        lr = float(cfg["optimizer"]["lr"])
        lower = min(lr / 10, SUGGESTED_LR_CAP)
        folder, name = Path(cfg["checkpoint"]["dir"]), str(cfg["name"])
        advice = self._checkpoint_advice(folder / name / "last.ckpt", pl_module)
        raise FloatingPointError(
            f"non-finite loss {value} in optimiser step {trainer.global_step} (epoch {trainer.current_epoch}, "
            f"batch {batch_idx}); loss terms: {listed}. Training stopped; the model's largest |parameter| is now "
            f"{largest_abs(pl_module.parameters()):.3g} ({self._start_largest:.3g} at the start of this run). "
            f"{advice} To change the settings, start a new run: the same command with name={free_name(folder, name)} "
            f"optimizer.lr={lower:g} "
            f"in place of its name and optimizer.lr (a tenth of this run's {lr:g}, capped at {SUGGESTED_LR_CAP:g}, "
            f"the largest lr of the shipped recipes), or with another fix; auto_resume never continues a run "
            f"with other settings."
        )

    def _checkpoint_advice(self, last: Path, pl_module: pl.LightningModule) -> str:
        """Whether the run's newest checkpoint `last` may be resumed from: only if it is healthy."""
        if not last.is_file():
            return "No checkpoint of this run was kept."
        ckpt = torch.load(last, map_location="cpu", weights_only=True)
        names = {name for name, _ in pl_module.named_parameters()}
        peak = largest_abs(v for k, v in ckpt["state_dict"].items() if k in names)
        limit = DIVERGED_GROWTH * self._start_largest
        where = f"The run's newest checkpoint, {last} (step {ckpt['global_step']}),"
        if math.isfinite(peak) and peak <= limit:
            return (f"{where} holds finite parameters, the largest |parameter| {peak:.3g}, within {DIVERGED_GROWTH:g}x "
                    f"the start's: to retry from it with the same settings, run the same command with "
                    f"auto_resume.enabled=true.")
        return (f"{where} already holds diverged weights (the largest |parameter| {peak:.3g}, beyond "
                f"{DIVERGED_GROWTH:g}x the start's {self._start_largest:.3g}): do not resume from it.")
