"""Evaluation works on any labelled dataset: fewer than 5 classes and another class count than
pretraining (the classifier is sized from the evaluation data), one report per checkpoint, and
bad requests refused before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.errors import ConfigError
from solo_equimod.eval.__main__ import main as eval_cli
from solo_equimod.eval.knn import run_knn
from solo_equimod.eval.linear import run_linear
from solo_equimod.eval.linear_config import LinearConfig
from solo_equimod.eval.loading import load_for_eval
from solo_equimod.methods import METHODS
from solo_equimod.run.checkpoints import save_method
from tests.conftest import REPO, snapshot, tiny_pretrain_cfg, write_image_folder


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """A 10-class (synthetic) checkpoint and a 3-class custom dataset to evaluate it on."""
    torch.manual_seed(0)
    cfg = tiny_pretrain_cfg("simclr", tmp_path, **{"data.num_classes": 10, "method_kwargs.proj_hidden_dim": 32})
    ckpt = save_method(METHODS["simclr"](cfg), tmp_path / "run" / "last.ckpt")
    data = {"dataset": "custom", "train_path": str(write_image_folder(tmp_path / "train", 3, 6, seed=0)),
            "val_path": str(write_image_folder(tmp_path / "val", 3, 3, seed=1)), "num_workers": 0}
    return ckpt, data


def test_linear_and_knn_on_three_classes_after_ten_class_pretraining(setup: tuple[Path, dict]) -> None:
    ckpt, data = setup
    linear = run_linear({"pretrained_feature_extractor": str(ckpt), "data": data, "max_epochs": 2, "augment": False,
                         "accelerator": "cpu"})
    knn = run_knn({"pretrained_feature_extractor": str(ckpt), "data": data, "k": 3, "num_workers": 0})
    for report in (linear, knn):
        # 3 classes: the classifier has 3 outputs and "top-5" is top-3, which always holds the label
        assert report["num_classes"] == 3 and report["top5"] == 100.0 and 0 <= report["top1"] <= 100
    assert json.loads((ckpt.parent / "linear_custom-last.json").read_text()) == linear
    assert json.loads((ckpt.parent / "knn_custom-last.json").read_text()) == knn


def test_a_report_of_another_checkpoint_is_never_overwritten(setup: tuple[Path, dict]) -> None:
    ckpt, data = setup
    other = shutil.copyfile(ckpt, ckpt.with_name("epoch=0-step=1.ckpt"))
    run_knn({"pretrained_feature_extractor": str(ckpt), "data": data, "k": 3, "num_workers": 0})
    first = snapshot(ckpt.parent)
    run_knn({"pretrained_feature_extractor": str(other), "data": data, "k": 1, "num_workers": 0})
    after = snapshot(ckpt.parent)
    assert {k: after[k] for k in first} == first
    assert json.loads(after["knn_custom-epoch=0-step=1.json"])["k"] == 1


def test_validation_classes_other_than_training_are_refused(setup: tuple[Path, dict], tmp_path: Path) -> None:
    ckpt, data = setup
    data = {**data, "val_path": str(write_image_folder(tmp_path / "val4", 4, 1))}
    before = snapshot(ckpt.parent)
    with pytest.raises(ConfigError, match=r"has other classes than data.train_path.*only in val: \['c3'\]"):
        run_knn({"pretrained_feature_extractor": str(ckpt), "data": data, "num_workers": 0})
    assert snapshot(ckpt.parent) == before


@pytest.mark.parametrize("command", ["sensitivity", "equivariance"])
def test_zero_images_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    cfg = tiny_pretrain_cfg("simclr_equimod", tmp_path, **{"data.num_classes": 10})
    ckpt = save_method(METHODS["simclr_equimod"](cfg), tmp_path / "run" / "last.ckpt")
    before = snapshot(ckpt.parent)
    assert eval_cli([command, str(ckpt), "max_images=0"]) == 2
    assert "max_images=0: use a positive number of images" in capsys.readouterr().err
    assert snapshot(ckpt.parent) == before


def test_linear_random_init_is_the_probe_of_a_fresh_seeded_model(setup: tuple[Path, dict], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`random_init=true` on a trained checkpoint probes the architecture built fresh under the
    probe's seed (the reference: built and saved here, probed plainly): same backbone weights, same
    report; and its report is a file of its own."""
    import solo_equimod.eval.linear as linear

    ckpt, data = setup
    trained = torch.load(ckpt, weights_only=False)
    trained["state_dict"] = {k: v + 0.5 if v.is_floating_point() else v for k, v in trained["state_dict"].items()}
    torch.save(trained, ckpt)
    cfg = tiny_pretrain_cfg("simclr", tmp_path, **{"data.num_classes": 10, "method_kwargs.proj_hidden_dim": 32})
    torch.manual_seed(5)  # the linear config's default seed
    fresh = save_method(METHODS["simclr"](cfg), tmp_path / "fresh" / "last.ckpt")
    probed: list[dict[str, torch.Tensor]] = []
    extract = linear.extract_features
    monkeypatch.setattr(linear, "extract_features", lambda backbone, *a: probed.append(
        {k: v.clone() for k, v in backbone.state_dict().items()}) or extract(backbone, *a))
    args = {"data": data, "max_epochs": 3, "augment": False, "accelerator": "cpu"}
    baseline = run_linear({"pretrained_feature_extractor": str(ckpt), "random_init": True, **args})
    reference = run_linear({"pretrained_feature_extractor": str(fresh), **args})
    plain = run_linear({"pretrained_feature_extractor": str(ckpt), **args})
    weights = probed[0], probed[2], probed[4]  # the train-feature pass of each run
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])  # negative control
    assert baseline["random_init"] and not reference["random_init"]
    assert (baseline["top1"], baseline["top5"]) == (reference["top1"], reference["top5"])
    assert json.loads((ckpt.parent / "linear_random_init_custom-last.json").read_text()) == baseline
    assert json.loads((ckpt.parent / "linear_custom-last.json").read_text()) == plain


def test_data_keys_a_hydra_config_leaves_null_are_the_checkpoints(tmp_path: Path) -> None:
    """Under Hydra the schema writes every `data` key (null when not given): the checkpoint's synthetic
    size and original view are kept, a key given on the command line wins."""
    cfg = tiny_pretrain_cfg("simclr", tmp_path, **{"data.num_classes": 10, "data.synthetic_size": 96,
                                                    "data.original.resize": 36, "method_kwargs.proj_hidden_dim": 32})
    ckpt = save_method(METHODS["simclr"](cfg), tmp_path / "run" / "last.ckpt")
    register_schemas()
    with initialize_config_dir(str(REPO / "scripts/linear/synthetic"), version_base="1.3"):
        kept = compose(config_name="linear", overrides=[f"pretrained_feature_extractor={ckpt}"])
        given = compose(config_name="linear", overrides=[f"pretrained_feature_extractor={ckpt}", "data.synthetic_size=40"])
    assert kept.data.synthetic_size is None  # what Hydra hands over
    resolved, _ = load_for_eval(kept, LinearConfig)
    assert (resolved.data.synthetic_size, resolved.data.original.resize) == (96, 36)
    assert load_for_eval(given, LinearConfig)[0].data.synthetic_size == 40


def test_an_existing_report_is_refused_before_evaluating_unless_overwrite(
        setup: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    ckpt, data = setup
    report = ckpt.parent / "knn_custom-last.json"
    report.write_text("a user's notes")
    before = snapshot(ckpt.parent)
    args = [f"data.{key}={value}" for key, value in data.items()] + ["k=3"]
    assert eval_cli(["knn", str(ckpt), *args]) == 2 and snapshot(ckpt.parent) == before
    assert capsys.readouterr().err == (f"error: {report} already exists; refusing to overwrite it: remove it, choose "
                                       f"another output, or pass overwrite=true\n")
    assert eval_cli(["knn", str(ckpt), *args, "overwrite=true"]) == 0
    assert json.loads(report.read_text())["k"] == 3
