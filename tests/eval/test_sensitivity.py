"""Augmentation sensitivity: ridge probe and R^2 against naive references, and the command on a baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from solo_equimod.eval.sensitivity import (
    fit_ridge,
    predict_ridge,
    probe_r2,
    r2_per_component,
    representation_shift,
    run_sensitivity,
    select_ridge,
)
from solo_equimod.methods import METHODS
from solo_equimod.run.checkpoints import save_method
from tests.conftest import tiny_pretrain_cfg


def test_ridge_without_penalty_is_least_squares() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 5, generator=g), torch.randn(40, 2, generator=g)
    ols = torch.linalg.lstsq(torch.cat([torch.ones(40, 1), x], 1).double(), y.double()).solution
    x_new = torch.randn(7, 5, generator=g)
    expected = torch.cat([torch.ones(7, 1), x_new], 1).double() @ ols
    assert torch.allclose(predict_ridge(fit_ridge(x, y, 1e-10), x_new), expected, atol=1e-8)


def test_ridge_penalty_shrinks_towards_the_mean() -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(30, 3, generator=g), torch.randn(30, 1, generator=g)
    pred = predict_ridge(fit_ridge(x, y, 1e9), torch.randn(4, 3, generator=g))
    assert torch.allclose(pred, y.double().mean().expand(4, 1), atol=1e-6)


def test_r2_hand_values() -> None:
    y = torch.tensor([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    pred = torch.tensor([[1.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    r2 = r2_per_component(y, pred)  # SST = 2, SSE = 1; the constant column is undefined
    assert r2[0] == pytest.approx(0.5) and r2[1].isnan()


def test_probe_recovers_linear_parameters_and_not_noise() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(600, 10, generator=g)
    y = torch.stack([x[:, 0] * 2 - x[:, 3], x[:, 5] + 0.01 * torch.randn(600, generator=g),
                     torch.randn(600, generator=g), torch.ones(600)], 1)
    groups = {"linear": [0, 1], "noise": [2], "constant": [3]}
    ridge = select_ridge(x[:400], y[:400])
    r2 = probe_r2(x[:400], y[:400], x[400:], y[400:], groups, ridge)
    assert r2["linear"] > 0.99 and abs(r2["noise"]) < 0.1
    assert r2["constant"] != r2["constant"]  # NaN: nothing to predict


def test_representation_shift() -> None:
    h = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    shift = representation_shift(h, torch.tensor([[0.0, 2.0], [2.0, 2.0]]))
    assert torch.allclose(shift, torch.tensor([1.0, 0.0]), atol=1e-6)


def test_command_on_a_baseline(tmp_path: Path) -> None:
    cfg = tiny_pretrain_cfg("simclr", tmp_path, **{"data.num_classes": 10, "data.synthetic_size": 24})
    ckpt = save_method(METHODS["simclr"](cfg), tmp_path / "simclr.ckpt")
    report = run_sensitivity({"pretrained_feature_extractor": str(ckpt), "max_images": 16, "num_workers": 0,
                              "batch_size": 8})
    saved = json.loads((tmp_path / "sensitivity_synthetic-simclr.json").read_text())
    assert saved["num_fit"] == 16 and saved["num_test"] == 16 and saved["method"] == "simclr"
    assert set(saved["probe_r2"]) == {"crop", "flip", "jitter", "gray", "blur", "solarize"}
    assert set(saved["representation_shift"]) == {"crop", "flip", "jitter", "gray", "blur", "solarize", "all"}
    assert all(0 <= s["mean"] <= 2 for s in report["representation_shift"].values())
