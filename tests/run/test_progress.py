"""Progress output outside a terminal: plain lines at an interval (SLURM logs, CI, `> log`), the TQDM
bar in a terminal. The interval runs on a clock the test drives (10 s per training step), so the
steps that get a line are known by hand."""

from __future__ import annotations

import io

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from solo_equimod.run.progress import LineProgress, ProgressBar, progress_callback


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TenSecondSteps(pl.LightningModule):
    """A linear model whose every training step advances `clock` by 10 s and logs its step number."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def training_step(self, batch, batch_idx):
        self.now += 10.0
        self.log("seen", float(batch_idx + 1), prog_bar=True)
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit_with_lines(interval_s: float, epochs: int = 1) -> list[str]:
    module, stream = TenSecondSteps(), io.StringIO()
    progress = LineProgress(interval_s=interval_s, stream=stream, clock=module.clock)
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, callbacks=[progress],
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=1))
    assert "\r" not in stream.getvalue()
    return stream.getvalue().splitlines()


def test_lines_come_once_per_interval_and_at_each_epoch_end():
    # 8 steps of 10 s, interval 25 s: lines after step 3 (30 s since the epoch began), step 6 (30 s
    # since that line) and at the epoch's end (step 8)
    assert fit_with_lines(25.0) == ["epoch 0 step 3/8 (38%) | seen=3", "epoch 0 step 6/8 (75%) | seen=6",
                                    "epoch 0 step 8/8 (100%) | seen=8"]


def test_a_long_interval_leaves_one_line_per_epoch():
    assert fit_with_lines(1000.0, epochs=2) == ["epoch 0 step 8/8 (100%) | seen=8", "epoch 1 step 8/8 (100%) | seen=8"]


def test_a_terminal_gets_the_bar_and_a_file_gets_lines():
    assert type(progress_callback(Terminal())) is ProgressBar
    assert type(progress_callback(io.StringIO())) is LineProgress
