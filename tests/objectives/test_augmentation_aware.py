"""The augmentation-aware objectives (E-SSL rotation, ESSL transform prediction, AugSelf) and the essl
method: AugSelf's targets against values computed by hand from two known crops and jitter factors
(a flipped case, both flip modes), each loss against a naive re-implementation on fixed tensors,
each loss going down on a fixed batch, the BatchNorm batches the backbone sees, SimCLR + EquiMod +
rotation through Lightning with a checkpoint that reloads exactly, and the evaluations on the new
checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from solo_equimod.augment import ViewParams, layout_for, policies_from_config
from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.config.schema import validate
from solo_equimod.errors import ConfigError
from solo_equimod.eval.knn import run_knn
from solo_equimod.eval.linear import run_linear
from solo_equimod.eval.sensitivity import run_sensitivity
from solo_equimod.methods import METHODS
from solo_equimod.objectives import OBJECTIVES
from solo_equimod.run.checkpoints import load_method, save_method
from solo_equimod.run.training import pretrain
from tests.conftest import REPO, tiny_pretrain_cfg
from tests.helpers.training import fixed_batch, train_on_fixed_batch

HEADS = {"simclr": {"proj_hidden_dim": 32}, "byol": {"proj_hidden_dim": 32, "pred_hidden_dim": 32, "proj_output_dim": 16}}
SMALL = {"rotation": {"hidden_dim": 32}, "transform_prediction": {"hidden_dim": 32, "task": "jigsaw"},
         "augself": {"hidden_dim": 16}, "equimod": {"proj_hidden_dim": 32, "param_stats_samples": 200}}


def _cfg(tmp_path: Path, objectives: list[str], method: str = "simclr", **overrides: Any):
    return tiny_pretrain_cfg(method, tmp_path, "simclr", **{
        "data.num_classes": 10, "method_kwargs": HEADS.get(method, {}),
        "objectives": {name: SMALL[name] for name in objectives}, **overrides})


def _batch(cfg, n: int = 8) -> dict:
    """`fixed_batch` with the extras the objectives read: four rotations of small images, jigsaw images and labels."""
    batch = fixed_batch(cfg, n)
    g = torch.Generator().manual_seed(5)
    small = torch.randn(n, 3, 16, 16, generator=g)
    batch["extras"] = {"rotation": [torch.rot90(small, k, dims=(2, 3)) for k in range(4)],
                       "transform_prediction": {"image": torch.randn(n, 3, 32, 32, generator=g),
                                                "label": torch.randint(0, 24, (n,), generator=g)}}
    return batch


# ----- AugSelf targets by hand ------------------------------------------------------------------------------
def _augself(tmp_path: Path, **settings: Any):
    cfg = validate(_cfg(tmp_path, ["augself"]))
    cfg.objectives.augself.update(settings)
    return METHODS["simclr"](cfg).objectives["augself"]


def _hand_batch(layout) -> dict:
    """An image of H=20, W=40. View 1: crop left 4, top 2, 20 x 10 (w x h), not flipped, jitter (1.2, 0.8, 1.0,
    0.05); view 2: crop left 10, top 5, 30 x 15, flipped, no jitter. A second image repeats view 1 twice."""
    v1 = ViewParams(crop=(4, 2, 20, 10), jitter=True, factors=(1.2, 0.8, 1.0, 0.05), order=(2, 0, 1, 3))
    v2 = ViewParams(crop=(10, 5, 30, 15), flip=True)
    enc = lambda *ps: torch.tensor([layout.encode(p) for p in ps])  # noqa: E731
    return {"params": [enc(v1, v1), enc(v2, v1)], "image_size": torch.tensor([[20, 40], [20, 40]])}


def test_augself_targets_match_hand_computed_values(tmp_path) -> None:
    objective = _augself(tmp_path)
    batch = _hand_batch(objective.layout)
    # normalised boxes (top/H, left/W, h/H, w/W): view 1 (0.1, 0.1, 0.5, 0.5), centre (0.35, 0.35);
    # view 2 (0.25, 0.25, 0.75, 0.75), centre (0.625, 0.625), flipped: x-centre 1 - 0.625 = 0.375
    d12, d21 = objective.differences(batch, 0, 1), objective.differences(batch, 1, 0)
    torch.testing.assert_close(d12["crop"][0], torch.tensor([0.35 - 0.625, 0.35 - 0.375, -0.25, -0.25]))
    torch.testing.assert_close(d21["crop"][0], -d12["crop"][0])
    torch.testing.assert_close(d12["crop"][1], torch.zeros(4))
    # colour: (b - 1) / 0.8, (c - 1) / 0.8, (s - 1) / 0.8, h / 0.2 for view 1 (ranges 0.6-1.4, hue -0.1-0.1); 0 for view 2
    torch.testing.assert_close(d12["color"][0], torch.tensor([0.25, -0.25, 0.0, 0.25]))
    torch.testing.assert_close(d21["color"][0], torch.tensor([-0.25, 0.25, 0.0, -0.25]))


def test_augself_official_flip_uses_the_first_views_flag_for_both(tmp_path) -> None:
    objective = _augself(tmp_path, flip="first_view")
    batch = _hand_batch(objective.layout)
    d12, d21 = objective.differences(batch, 0, 1), objective.differences(batch, 1, 0)
    # [h1, h2]: view 1 is not flipped, so neither x-centre is mirrored: 0.35 - 0.625
    torch.testing.assert_close(d12["crop"][0], torch.tensor([-0.275, -0.275, -0.25, -0.25]))
    # [h2, h1]: view 2 is flipped, so both are: (1 - 0.625) - (1 - 0.35)
    torch.testing.assert_close(d21["crop"][0], torch.tensor([0.275, -0.275, 0.25, 0.25]))


def test_augself_loss_is_a_naive_mse_of_tanh_in_both_orders(tmp_path) -> None:
    objective = _augself(tmp_path, crop_weight=1.0, color_weight=0.5).train()
    batch = _hand_batch(objective.layout)
    g = torch.Generator().manual_seed(0)
    dim = objective.heads["crop"].layers[0].in_features // 2
    h1, h2 = torch.randn(2, dim, generator=g), torch.randn(2, dim, generator=g)
    out = objective(batch, {"views": [h1, h2]})
    d12, d21 = objective.differences(batch, 0, 1), objective.differences(batch, 1, 0)
    total = 0.0
    for task, weight in (("crop", 1.0), ("color", 0.5)):
        pred = objective.heads[task](torch.cat([torch.cat([h1, h2], 1), torch.cat([h2, h1], 1)]))
        target = torch.cat([d12[task], d21[task]])
        errors = [(math.tanh(float(pred[i, j])) - float(target[i, j])) ** 2 for i in range(4) for j in range(4)]
        assert float(out[task]) == pytest.approx(sum(errors) / len(errors), rel=1e-5)
        total += weight * sum(errors) / len(errors)
    assert float(out["loss"]) == pytest.approx(total, rel=1e-5)


def test_augself_colour_needs_jitter(tmp_path) -> None:
    cfg = tiny_pretrain_cfg("simclr", tmp_path, "simclr", **{"data.num_classes": 10, "objectives": {"augself": {}}})
    for entry in cfg.augmentations:
        entry.color_jitter.prob = 0.0
    with pytest.raises(ValueError, match="color_weight > 0 needs colour jitter"):
        METHODS["simclr"](validate(cfg))


# ----- cross-entropy objectives against naive loops ------------------------------------------------------
def _naive_ce(logits: torch.Tensor, labels: list[int]) -> float:
    rows = [-(float(row[y]) - math.log(sum(math.exp(float(v)) for v in row))) for row, y in zip(logits, labels)]
    return sum(rows) / len(rows)


def test_rotation_loss_is_a_naive_cross_entropy_over_the_4n_views(tmp_path) -> None:
    model = METHODS["simclr"](validate(_cfg(tmp_path, ["rotation"])))
    objective = model.objectives["rotation"]
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(3, model.features_dim, generator=g) for _ in range(4)]
    out = objective({}, {"extras.rotation": feats})
    logits = [objective.head(f) for f in feats]
    expected = _naive_ce(torch.cat(logits), [k for k in range(4) for _ in range(3)])
    assert float(out["loss"]) == pytest.approx(expected, rel=1e-5)
    hits = sum(int(row.argmax()) == k for k in range(4) for row in logits[k])
    assert float(out["acc"]) == pytest.approx(hits / 12)
    norms = [m for m in objective.head.modules() if isinstance(m, torch.nn.LayerNorm)]
    linears = [(m.in_features, m.out_features, m.bias is not None) for m in objective.head.modules()
               if isinstance(m, torch.nn.Linear)]
    assert len(norms) == 2 and linears == [(model.features_dim, 32, True), (32, 32, True), (32, 4, True)]


def test_transform_prediction_loss_is_a_naive_cross_entropy(tmp_path) -> None:
    model = METHODS["essl"](validate(_cfg(tmp_path, ["transform_prediction"], method="essl")))
    objective = model.objectives["transform_prediction"]
    h = torch.randn(5, model.features_dim, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0, 23, 5, 5, 11])
    out = objective({"extras": {"transform_prediction": {"label": labels}}}, {"extras.transform_prediction.image": h})
    assert float(out["loss"]) == pytest.approx(_naive_ce(objective.head(h), labels.tolist()), rel=1e-5)
    linears = [(m.in_features, m.out_features) for m in objective.head.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [(model.features_dim, 32), (32, 24)]
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in objective.head.modules())


def test_unknown_task_names_the_valid_ones(tmp_path) -> None:
    cfg = _cfg(tmp_path, ["transform_prediction"], method="essl")
    cfg.objectives.transform_prediction.task = "solarize"
    with pytest.raises(ConfigError, match=r"task='solarize' is invalid: must be one of: hflip, vflip, color_inversion"):
        validate(cfg)


# ----- training -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,objectives", [("essl", ["transform_prediction"]), ("byol", ["rotation", "augself"]),
                                               ("simclr", ["equimod", "rotation", "augself"])])
def test_each_objective_loss_goes_down_on_a_fixed_batch(method, objectives, tmp_path) -> None:
    torch.manual_seed(0)
    model = METHODS[method](validate(_cfg(tmp_path, objectives, method=method)))
    history = train_on_fixed_batch(model, _batch(model.cfg))
    for name in objectives:
        assert history[-1][f"{name}_loss"] < 0.8 * history[0][f"{name}_loss"], name
    if method == "essl":
        assert all(h["essl_loss"] == 0.0 and h["loss"] == h["transform_prediction_loss"] for h in history)


def test_pretext_images_get_backbone_calls_of_their_own(tmp_path) -> None:
    """E-SSL / ESSL encode their pretext images alone; EquiMod's original shares the views' BatchNorm batch."""
    model = METHODS["simclr"](validate(_cfg(tmp_path, ["equimod", "rotation", "transform_prediction"])))
    calls: list[tuple[int, ...]] = []
    model.backbone.register_forward_hook(lambda mod, args, out: calls.append(tuple(args[0].shape)))
    feats = model.encode_batch(_batch(model.cfg))
    assert calls == [(24, 3, 32, 32), (32, 3, 16, 16), (8, 3, 32, 32)]
    with torch.no_grad():
        torch.testing.assert_close(feats["extras.transform_prediction.image"],
                                   model.backbone(_batch(model.cfg)["extras"]["transform_prediction"]["image"]))


def test_simclr_equimod_rotation_trains_through_lightning_and_reloads_exactly(tmp_path) -> None:
    ckpt = pretrain(_cfg(tmp_path, ["equimod", "rotation"]))
    model = load_method(ckpt)
    assert list(model.objectives) == ["equimod", "rotation"]
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert any(k.startswith("objectives.rotation.head.") for k in state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    batch = _batch(model.cfg)
    again = load_method(ckpt)
    torch.testing.assert_close(again.ssl_step(batch)[0]["loss"], model.ssl_step(batch)[0]["loss"])
    header = (ckpt.parent / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert {"train_rotation_loss", "train_rotation_acc", "train_equimod_loss"} <= set(header.split(","))


# ----- configs and evaluation ----------------------------------------------------------------------------
def _compose(config: str, overrides: list[str] = ()):
    register_schemas()
    with initialize_config_dir(str(REPO / "scripts/pretrain/synthetic"), version_base="1.3"):
        return validate(compose(config_name=config, overrides=list(overrides)))


def test_shipped_configs_compose_the_objectives() -> None:
    assert list(_compose("simclr_equimod_rotation").objectives) == ["equimod", "rotation"]
    assert _compose("simclr_rotation").objectives.rotation.weight == 0.4
    assert list(_compose("simclr_equimod_augself").objectives) == ["equimod", "augself"]
    jigsaw = _compose("essl", ["objectives.transform_prediction.task=jigsaw"])
    assert (jigsaw.method, jigsaw.name, jigsaw.objectives.transform_prediction.task) == ("essl", "essl_jigsaw-synthetic",
                                                                                         "jigsaw")
    none = _compose("essl", ["~objectives.transform_prediction"])
    assert dict(none.objectives) == {} and none.name == "essl_none-synthetic"
    essl = OmegaConf.load(REPO / "scripts/pretrain/cifar/essl.yaml")
    assert (essl.optimizer.name, essl.optimizer.lr, essl.optimizer.kwargs.nesterov) == ("sgd", 0.36, True)
    assert layout_for(policies_from_config(jigsaw.augmentations)).groups() == {"crop": [0, 1, 2, 3]}
    assert OBJECTIVES["augself"].SETTINGS().weight == 1.0


@pytest.mark.parametrize("method,objectives", [("simclr", ["rotation"]), ("simclr", ["augself"]),
                                               ("essl", ["transform_prediction"])])
def test_linear_knn_and_sensitivity_read_the_new_checkpoints(method, objectives, tmp_path) -> None:
    cfg = validate(_cfg(tmp_path, objectives, method=method, **{"data.synthetic_size": 24}))
    torch.manual_seed(0)
    model = METHODS[method](cfg)
    ckpt = save_method(model, tmp_path / "run" / "last.ckpt")
    reloaded = load_method(ckpt)
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(reloaded.eval().backbone(x), model.eval().backbone(x))
    knn = run_knn({"pretrained_feature_extractor": str(ckpt), "k": 5, "num_workers": 0})
    assert 0.0 <= knn["top1"] <= knn["top5"] <= 100.0
    linear = run_linear(OmegaConf.create({"pretrained_feature_extractor": str(ckpt), "max_epochs": 1, "augment": False,
                                          "accelerator": "cpu", "data": {"num_workers": 0}}))
    assert 0.0 <= linear["top1"] <= 100.0
    report = run_sensitivity({"pretrained_feature_extractor": str(ckpt), "max_images": 16, "num_workers": 0,
                              "batch_size": 8})
    assert set(report["probe_r2"]) == set(layout_for(policies_from_config(cfg.augmentations)).groups())
    saved = json.loads((tmp_path / "run" / "sensitivity_synthetic-last.json").read_text())
    assert saved["method"] == "+".join([method, *objectives])  # the method with its objectives, e.g. simclr+rotation
