"""`data.format: dali` under a real Lightning Trainer: every file once per epoch, no epoch skipped
or doubled (the trap of solo-learn issue #265), real indexes and labels reach the method."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from PIL import Image

from solo_equimod.config.schema import validate
from solo_equimod.data.pretrain import PretrainDataModule
from solo_equimod.methods import METHODS
from solo_equimod.objectives.compose import pipeline_requests
from tests.conftest import tiny_pretrain_cfg

pytestmark = pytest.mark.skipif(importlib.util.find_spec("nvidia.dali") is None, reason="nvidia-dali not installed")


class RecordBatches(pl.Callback):
    def __init__(self) -> None:
        self.seen: dict[int, list[tuple[int, int]]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        index, targets = batch["index"], batch["target"]
        self.seen.setdefault(trainer.current_epoch, []).extend(zip(index.tolist(), targets.tolist()))


def test_lightning_drives_dali_through_whole_epochs(tmp_path: Path):
    root = tmp_path / "train"
    files = []
    for k in range(24):
        folder = root / f"c{k % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        colour = (k * 10 % 256, 255 - k * 10 % 256, (k * 37) % 256)
        Image.new("RGB", (32 + k % 5, 32), colour).save(folder / f"{k:02d}.png")
        files.append(k % 3)
    cfg = validate(tiny_pretrain_cfg("simclr_equimod", tmp_path, **{
        "data.dataset": "custom", "data.train_path": str(root), "data.format": "dali",
        "data.original": {"resize": 32, "center_crop": 32}, "optimizer.batch_size": 8,
        "limit_train_batches": None, "limit_val_batches": 0, "max_epochs": 3, "data.num_workers": 1,
    }))
    cfg.data.num_classes = 3
    datamodule = PretrainDataModule(cfg, pipeline_requests(cfg))
    recorder = RecordBatches()
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         callbacks=[recorder], limit_val_batches=0, enable_progress_bar=False)
    trainer.fit(METHODS["simclr_equimod"](cfg), datamodule=datamodule)
    assert trainer.global_step == 3 * 3  # 24 files / batch 8, three epochs (an alternating empty epoch is the trap)
    assert sorted(recorder.seen) == [0, 1, 2]
    # ImageFolder order: the files sorted by class folder, then name
    expected_labels = {i: label for i, label in enumerate(sorted(files))}
    for epoch, pairs in recorder.seen.items():
        indexes = [i for i, _ in pairs]
        assert sorted(indexes) == list(range(24)), f"epoch {epoch} did not visit each file once"
        assert all(expected_labels[i] == t for i, t in pairs)
    assert [i for i, _ in recorder.seen[0]] != [i for i, _ in recorder.seen[1]]  # reshuffled per epoch
    assert torch.isfinite(torch.tensor(trainer.callback_metrics["train_loss"].item()))
