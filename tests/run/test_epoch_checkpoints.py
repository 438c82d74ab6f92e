"""Epoch checkpoints: the newest `checkpoint.keep_epochs` are kept, plus last.ckpt."""

from __future__ import annotations

import pytest

from solo_equimod.run.training import pretrain
from tests.conftest import tiny_pretrain_cfg


@pytest.mark.parametrize("keep, expected", [(1, ["epoch=2-step=3.ckpt"]),
                                            (-1, ["epoch=0-step=1.ckpt", "epoch=1-step=2.ckpt", "epoch=2-step=3.ckpt"])])
def test_keep_epochs(tmp_path, keep, expected):
    cfg = tiny_pretrain_cfg("simclr", tmp_path, **{"max_epochs": 3, "limit_train_batches": 1, "limit_val_batches": 0,
                                                    "checkpoint.keep_epochs": keep})
    run_dir = pretrain(cfg).parent
    assert sorted(p.name for p in run_dir.glob("epoch=*.ckpt")) == expected
    assert (run_dir / "last.ckpt").is_file()


def test_keep_epochs_zero_is_refused(tmp_path):
    with pytest.raises(ValueError, match="checkpoint.keep_epochs=0"):
        pretrain(tiny_pretrain_cfg("simclr", tmp_path, **{"checkpoint.keep_epochs": 0}))
