"""Equivariance measures (paper Sec. 3.2.2): Eq. 5 and Eq. 6 against hand-computed values, the
invariance reference (identity predictor: 0 and 1), isolated views, the command and its errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from solo_equimod.augment import layout_for, policies_from_config
from solo_equimod.augment.pipeline import OriginalView
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.data.datasets import build_dataset
from solo_equimod.eval.__main__ import main as cli
from solo_equimod.eval.augmentation_views import AugmentationViews, measured_policies
from solo_equimod.eval.displacement import absolute_displacement, relative_displacement, summarize
from solo_equimod.eval.encoded_views import EncodedViews
from solo_equimod.eval.equivariance import equivariance_measures, run_equivariance
from solo_equimod.methods import METHODS
from solo_equimod.run.checkpoints import load_method, save_method
from tests.conftest import tiny_pretrain_cfg


def _saved(method: str, path: Path) -> Path:
    torch.manual_seed(0)
    cfg = tiny_pretrain_cfg(method, path, **{"data.num_classes": 10, "data.synthetic_size": 16})
    return save_method(METHODS[method](cfg), path / f"{method}.ckpt")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eq")
    return {m: _saved(m, root) for m in ("simclr_equimod", "simclr")}


def test_measures_match_hand_computed_values() -> None:
    z_view = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    z_orig = torch.tensor([[0.0, 1.0], [3.0, 4.0]])
    z_pred = torch.tensor([[1.0, 1.0], [4.0, 3.0]])
    # row 0: sim(view, pred) = 1/sqrt(2), sim(view, orig) = 0; row 1: sim(view, pred) = 24/25, sim(view, orig) = 1
    expected_abs = torch.tensor([1 / math.sqrt(2), 24 / 25 - 1])
    expected_rel = torch.tensor([1 / (1 - 1 / math.sqrt(2)), 0.0])
    assert torch.allclose(absolute_displacement(z_view, z_pred, z_orig), expected_abs, atol=1e-6)
    assert torch.allclose(relative_displacement(z_view, z_pred, z_orig), expected_rel, atol=1e-5)


def test_identity_predictor_gives_invariance_values() -> None:
    g = torch.Generator().manual_seed(0)
    z_view, z_orig = torch.randn(50, 16, generator=g), torch.randn(50, 16, generator=g)
    assert torch.allclose(absolute_displacement(z_view, z_orig, z_orig), torch.zeros(50), atol=1e-6)
    assert torch.allclose(relative_displacement(z_view, z_orig, z_orig), torch.ones(50), atol=1e-5)


def test_relative_is_undefined_when_prediction_equals_view() -> None:
    z = torch.tensor([[1.0, 2.0], [1.0, 0.0]])
    rel = relative_displacement(z, z, torch.tensor([[2.0, -1.0], [0.0, 1.0]]))
    assert rel.isnan().all()
    stats = summarize(torch.tensor([1.0, 2.0, 3.0, 4.0, float("nan")]))
    assert stats == pytest.approx({"mean": 2.5, "std": math.sqrt(5 / 3), "median": 2.5, "q25": 1.75, "q75": 3.25,
                                   "n": 4, "n_undefined": 1})


def test_equivariance_measures_with_identity_predictor(ckpts: dict[str, Path]) -> None:
    method = load_method(ckpts["simclr_equimod"])
    predictor = method.view_predictor
    predictor.predict = lambda z_orig, params: z_orig  # u = identity: an invariant model
    g = torch.Generator().manual_seed(1)
    feats = lambda: torch.randn(12, method.features_dim, generator=g)  # noqa: E731
    encoded = EncodedViews(feats(), {"crop": feats(), "all": feats()},
                           {"crop": torch.zeros(12, predictor.param_layout.dim), "all": torch.zeros(12, 1)})
    out = equivariance_measures(predictor, encoded)
    for aug in ("crop", "all"):
        assert out[aug]["absolute"]["mean"] == pytest.approx(0.0, abs=1e-6)
        assert out[aug]["relative"]["median"] == pytest.approx(1.0, abs=1e-5)


def test_isolated_views_apply_only_their_augmentation() -> None:
    from omegaconf import OmegaConf

    from tests.conftest import REPO

    policies = policies_from_config(OmegaConf.load(REPO / "scripts/pretrain/cifar/augmentations/byol.yaml"))
    measured = measured_policies(policies)
    assert list(measured) == ["crop", "flip", "jitter", "gray", "blur", "solarize", "all"]
    assert len(measured["solarize"]) == 1  # BYOL: only the second view solarizes
    base = build_dataset("synthetic", None, "val", synthetic_size=None)
    info = DATASET_INFO["synthetic"]
    ds = AugmentationViews(base, measured, layout_for(policies), list(info.mean), list(info.std), OriginalView())
    torch.manual_seed(0)
    sample = ds[3]
    original, views, params = sample["original"], sample["views"], sample["params"]
    layout = layout_for(policies)
    flip = layout.decode(params["flip"])
    assert flip.flip and not (flip.jitter or flip.gray or flip.blur or flip.solarize)
    assert flip.crop == (0, 0, 32, 32)
    assert torch.allclose(views["flip"], TF.horizontal_flip(original), atol=1e-5)  # full image, flipped
    crop = layout.decode(params["crop"])
    assert not (crop.flip or crop.jitter or crop.gray or crop.blur or crop.solarize)
    gray = views["gray"] * torch.tensor(info.std)[:, None, None] + torch.tensor(info.mean)[:, None, None]
    assert torch.allclose(gray[0], gray[1], atol=1e-5) and torch.allclose(gray[1], gray[2], atol=1e-5)


def test_command_writes_reports(ckpts: dict[str, Path]) -> None:
    report = run_equivariance({"pretrained_feature_extractor": str(ckpts["simclr_equimod"]), "max_images": 8,
                               "num_workers": 0, "batch_size": 4})
    ckpt = ckpts["simclr_equimod"]
    stem = ckpt.parent / f"equivariance_synthetic-{ckpt.stem}"
    saved = json.loads(stem.with_suffix(".json").read_text())
    assert saved["measures"] == json.loads(json.dumps(report["measures"])) and saved["num_images"] == 8
    assert set(saved["measures"]) == {"crop", "flip", "jitter", "gray", "blur", "solarize", "all"}
    rows = list(csv.DictReader(stem.with_suffix(".csv").open()))
    assert len(rows) == 14 and float(rows[0]["mean"]) == pytest.approx(saved["measures"]["crop"]["absolute"]["mean"])
    for measure in ("absolute", "relative"):
        assert stem.with_name(f"{stem.name}_{measure}.png").read_bytes()[:4] == b"\x89PNG"


def test_baseline_checkpoint_gets_a_clear_error(ckpts: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    assert cli(["equivariance", str(ckpts["simclr"])]) == 2
    err = capsys.readouterr().err
    assert "trained with simclr," in err and "+objectives.equimod.weight=1.0" in err and "sensitivity" in err
