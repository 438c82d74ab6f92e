"""Training progress that reads well where it is written: Lightning's TQDM bar in a terminal, and
plain lines at an interval when the output is a file (SLURM's log, CI, `> log`), where a bar's
carriage-return updates would pile up as thousands of redraws on one line."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar as LightningProgressBar

LINE_INTERVAL_S = 30.0  # one line per half minute: a 10-hour run logs ~1,200 lines, not a redraw per step


class ProgressBar(TQDMProgressBar):
    """Lightning's bar without `v_num`: our loggers' versions are folder names, not run numbers."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class LineProgress(LightningProgressBar):
    """One line per `interval_s` seconds of training (and one at the end of each epoch):
    `epoch E step S/N (P%) | train_loss=... | ...`, the metrics of Lightning's bar, flushed at once.
    Subclassing Lightning's progress-bar base keeps its role: Lightning then adds no bar of its own."""

    def __init__(self, interval_s: float = LINE_INTERVAL_S, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s, self.stream, self.clock = interval_s, stream, clock
        self._enabled, self._last = True, float("-inf")

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last = self.clock()  # the epoch's first line comes one interval in, not at step 1

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.clock() - self._last >= self.interval_s:
            self._write(trainer, pl_module, batch_idx + 1)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write(trainer, pl_module, trainer.fit_loop.epoch_loop.batch_progress.current.completed)

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, step: int) -> None:
        self._last = self.clock()
        if not self._enabled or not trainer.is_global_zero:
            return
        total = self.total_train_batches
        of = f"/{total} ({100 * step / total:.0f}%)" if isinstance(total, int) and total > 0 else ""
        metrics = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"}
        shown = "".join(f" | {k}={v:.4g}" if isinstance(v, float) else f" | {k}={v}" for k, v in metrics.items())
        print(f"epoch {trainer.current_epoch} step {step}{of}{shown}", file=self.stream or sys.stdout, flush=True)


def progress_callback(stream: TextIO | None = None) -> LightningProgressBar:
    """The TQDM bar when `stream` (default: stdout, where Lightning's bar writes) is a terminal,
    else `LineProgress`. The default stream is looked up when a line is written, not kept: a callback
    holding the process's stdout could not be pickled to the processes of `strategy=ddp_spawn`."""
    return ProgressBar(refresh_rate=1) if (stream or sys.stdout).isatty() else LineProgress(stream=stream)
