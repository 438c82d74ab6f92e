"""SIE's loss against a naive loop re-implementation, its training, and SIE's measures on hand-built
embeddings with known answers; a short end-to-end run on the factor bench with every eval command."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from solo_equimod.config.schema import validate
from solo_equimod.data.views3d import GROUPS
from solo_equimod.eval.__main__ import main as eval_main
from solo_equimod.eval.objects import EncodedObjects
from solo_equimod.eval.prediction3d import embed_and_predict, prediction_error, ranks, retrieval
from solo_equimod.eval.probes3d import TARGETS, r2_column_means, r2_scalar, regression_r2
from solo_equimod.losses.sie import sie_loss
from solo_equimod.methods import METHODS
from solo_equimod.run.checkpoints import load_method
from solo_equimod.run.training import pretrain
from tests.helpers.factors3d import factors3d_cfg
from tests.helpers.naive import naive_cov, naive_std
from tests.helpers.training import train_on_fixed_batch

REPO = Path(__file__).resolve().parents[2]






def test_sie_loss_equals_a_naive_loop_reimplementation() -> None:
    """models.py:358-426 written out with loops: 10 MSE_inv + 0.45 * 10 MSE_eq + 10 (v(x) + v(y)) / 2
    + 10 v(pred) / 2 + c(x) + c(y), x = [inv_1, eq_1], y = [inv_2, eq_2]."""
    g = torch.Generator().manual_seed(0)
    inv1, inv2, eq1, eq2, pred = (torch.randn(9, 3, generator=g, dtype=torch.float64) * 0.7 for _ in range(5))
    got = sie_loss((inv1, inv2), (eq1, eq2), pred)
    x, y = torch.cat([inv1, eq1], 1), torch.cat([inv2, eq2], 1)
    mse = lambda a, b: float(((a - b) ** 2).sum()) / a.numel()  # noqa: E731
    expected = (10 * mse(inv1, inv2) + 0.45 * 10 * mse(pred, eq2) + 10 * (naive_std(x) / 2 + naive_std(y) / 2)
                + 10 * naive_std(pred) / 2 + naive_cov(x, 9) + naive_cov(y, 9))
    assert float(got["loss"]) == pytest.approx(expected, rel=1e-9)
    no_var = sie_loss((inv1, inv2), (eq1, eq2), pred, pred_std=False)
    assert float(no_var["loss"]) == pytest.approx(expected - 10 * naive_std(pred) / 2, rel=1e-9)
    only_eq = sie_loss(None, (eq1, eq2), pred, equi_factor=1.0)  # SIEOnlyEqui
    assert float(only_eq["loss"]) == pytest.approx(10 * mse(pred, eq2) + 10 * (naive_std(eq1) + naive_std(eq2)) / 2
                                                   + 10 * naive_std(pred) / 2 + naive_cov(eq1, 9) + naive_cov(eq2, 9))




def test_sie_loss_decreases_on_a_fixed_batch(tmp_path: Path) -> None:
    cfg = factors3d_cfg("sie", tmp_path, **{"method_kwargs.equi_dim": 16, "method_kwargs.mlp": [32, 32, 32],
                                            "data.num_classes": 6})
    model = METHODS["sie"](cfg)
    g = torch.Generator().manual_seed(0)
    quats = torch.nn.functional.normalize(torch.randn(16, 4, generator=g), dim=1)
    batch = {"views": [torch.randn(16, 3, 16, 16, generator=g) for _ in range(2)],
             "params": [torch.tensor([[0.0, 0, 0, 1]]).repeat(16, 1), quats], "target": torch.zeros(16, dtype=torch.long)}
    losses = [step["loss"] for step in train_on_fixed_batch(model, batch, steps=10)]
    assert losses[-1] < 0.8 * losses[0]
    copy = pickle.loads(pickle.dumps(model))  # models pickle (ddp_spawn), SIE's heads included
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), copy.state_dict().values()))


class Rotator:
    """An exact predictor on embeddings z(view) = R_view^T c_object: with g = R_0^-1 R_view,
    z(view) = (R_0 g)^T c = g^T z(0), so predict(z_0, g) = R(g)^T z_0."""

    @staticmethod
    def matrix(q: torch.Tensor) -> torch.Tensor:
        x, y, z, w = q.unbind(-1)
        return torch.stack([torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
                            torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
                            torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def predict(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (self.matrix(g[:, :4]).transpose(-1, -2) @ z.unsqueeze(-1)).squeeze(-1)


def rotated_objects(objects: int = 20, views: int = 10, seed: int = 0) -> EncodedObjects:
    """Features of view v of object o: R_v^T applied to an object vector."""
    from solo_equimod.data.rotations import euler_xyz_quat

    rng = np.random.default_rng(seed)
    latents = np.concatenate([rng.uniform(-np.pi / 2, np.pi / 2, (objects, views, 3)), rng.random((objects, views, 4))], -1)
    centre = torch.nn.functional.normalize(torch.randn(objects, 3, generator=torch.Generator().manual_seed(seed)), dim=1)
    rot = Rotator.matrix(torch.from_numpy(euler_xyz_quat(latents[..., :3])).double()).transpose(-1, -2)  # R_v^T
    feats = (rot @ centre.double()[:, None, :, None]).squeeze(-1).float()
    return EncodedObjects(feats, latents, torch.zeros(objects, dtype=torch.long))


def test_exact_predictor_gives_pre_0_and_mrr_1() -> None:
    enc = rotated_objects()
    z, pred = embed_and_predict(Rotator(), enc, GROUPS["rot"])
    from solo_equimod.data.rotations import euler_xyz_quat

    quats = euler_xyz_quat(enc.latents[..., :3]).reshape(-1, 4)
    assert prediction_error(pred.flatten(0, 1), quats, z.flatten(0, 1), quats) == pytest.approx(0.0, abs=1e-6)
    scores = retrieval(ranks(z, pred))
    assert scores["mrr"] == pytest.approx(1.0) and scores["h@1"] == pytest.approx(1.0)


def test_random_predictor_gives_chance_values() -> None:
    views = 10
    g = torch.Generator().manual_seed(1)
    z = torch.nn.functional.normalize(torch.randn(400, views, 8, generator=g), dim=-1)
    pred = torch.nn.functional.normalize(torch.randn(400, views, 8, generator=g), dim=-1)
    scores = retrieval(ranks(z, pred))
    assert scores["h@1"] == pytest.approx(1 / views, abs=0.02)  # a uniform rank among 10
    assert scores["h@5"] == pytest.approx(5 / views, abs=0.03)
    assert scores["mrr"] == pytest.approx(sum(1 / r for r in range(1, views + 1)) / views, abs=0.02)
    rng = np.random.default_rng(0)
    quats = torch.nn.functional.normalize(torch.randn(4000, 4, generator=g), dim=1).numpy()
    chance = float(np.mean(1 - (quats[rng.integers(4000, size=20000)] * quats[rng.integers(4000, size=20000)]).sum(1) ** 2))
    pre = prediction_error(pred.flatten(0, 1), quats, z.flatten(0, 1), quats)  # neighbours unrelated to rotations
    assert chance == pytest.approx(0.75, abs=0.01)  # uniform unit quaternions: E<q, q'>^2 = 1/4
    assert pre == pytest.approx(chance, abs=0.03)


def test_r2_has_one_scalar_mean_or_per_component_means_and_the_probe_recovers_an_encoded_rotation() -> None:
    y = torch.tensor([[1.0, 10.0], [3.0, 14.0]])
    mean = float(y.mean())  # one mean over all entries, not per column
    pred = torch.tensor([[2.0, 10.0], [3.0, 13.0]])
    assert r2_scalar(y, pred) == pytest.approx(1 - 2.0 / float(((y - mean) ** 2).sum()))
    # per column: means 2 and 12, SS_tot = (1 + 1) + (4 + 4) = 10, SS_res = 1 + 1 = 2
    assert r2_column_means(y, pred) == pytest.approx(1 - 2.0 / 10.0)
    cfg = OmegaConf.create({"max_epochs": 60, "lr": 1e-3, "batch_size": 256, "hidden_dim": 128, "val_pairs": 5,
                            "seed": 0})
    train, val = rotated_objects(60, 10, seed=0), rotated_objects(20, 10, seed=1)
    # features: the rotation matrix of the view itself (a frozen backbone that sees the pose)
    from solo_equimod.data.rotations import euler_xyz_matrix

    for enc in (train, val):
        enc.feats = torch.from_numpy(euler_xyz_matrix(enc.latents[..., :3])).float().flatten(2)
    good = regression_r2(train, val, slice(None), TARGETS["rotation"], cfg)
    for enc in (train, val):
        enc.feats = torch.randn(enc.feats.shape, generator=torch.Generator().manual_seed(2))
    chance = regression_r2(train, val, slice(None), TARGETS["rotation"], cfg)
    assert good["r2"] > 0.8 and chance["r2"] < 0.3
    assert good["r2_column_means"] > 0.6 and chance["r2_column_means"] < 0.05  # 0: the per-component mean


def test_end_to_end_on_the_factor_bench_with_every_measure(tmp_path: Path) -> None:
    cfg = factors3d_cfg("sie", tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                        **{"data.synthetic_size": 64, "optimizer.batch_size": 16, "method_kwargs.equi_dim": 16,
                           "method_kwargs.mlp": [32, 32, 32]})
    ckpt = pretrain(cfg)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(v, state[k]) for k, v in load_method(ckpt).state_dict().items())  # reloads exactly
    common = [str(ckpt), "max_objects=6", "max_epochs=2", "hidden_dim=32"]
    for measure, key in (("classification", "top1"), ("rotation", "r2"), ("color", "r2"), ("pre", "pre"),
                         ("mrr", "mrr")):
        assert eval_main([measure, *common]) == 0
        report = json.loads((ckpt.parent / f"{measure}_factors3d-last.json").read_text())
        assert (ckpt.parent / f"{measure}_factors3d-last.png").is_file()
        if key in ("top1", "r2"):
            assert set(report[key]) == {"invariant", "equivariant", "whole"}
    mrr = json.loads((ckpt.parent / "mrr_factors3d-last.json").read_text())["mrr"]
    assert set(mrr) == {"mrr", "h@1", "h@2", "h@5", "h@10"}
    assert set(json.loads((ckpt.parent / "pre_factors3d-last.json").read_text())["pre"]) == {
        "train-train", "val-val", "val-(train+val)"}
    assert eval_main(["rotation", str(ckpt), "parts=[nope]", "overwrite=true"]) == 2  # an unknown part: an error


@pytest.mark.parametrize("config", ["simclr_equimod", "simclr_augself"])
def test_baselines_train_on_the_factor_bench_with_group_elements(tmp_path: Path, config: str) -> None:
    cfg = factors3d_cfg(config, tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                        **{"data.synthetic_size": 64, "optimizer.batch_size": 16})
    if config == "simclr_augself":
        cfg.objectives.augself.hidden_dim = 32
    ckpt = pretrain(cfg)
    model = METHODS[cfg.method](torch.load(ckpt, weights_only=True)["hyper_parameters"]["cfg"])
    objective = next(iter(model.objectives.values()))
    assert "original" not in objective.encodes  # the group element takes view 1 to view 2: no original image
    if config == "simclr_equimod":
        assert eval_main(["mrr", str(ckpt), "max_objects=6"]) == 0  # EquiMod's predictor is measured like SIE's
    else:
        assert eval_main(["pre", str(ckpt), "max_objects=6"]) == 2  # no predictor: a clear error


def test_sie_refuses_data_without_group_elements(tmp_path: Path) -> None:
    from solo_equimod.config.preflight import check_pretrain_config
    from solo_equimod.errors import ConfigError
    from tests.conftest import tiny_pretrain_cfg

    cfg = validate(tiny_pretrain_cfg("sie", tmp_path))
    with pytest.raises(ConfigError, match="method=sie needs view pairs with group elements: data.dataset 3diebench or "
                                          "factors3d .got data.dataset='synthetic'"):
        check_pretrain_config(cfg)


def test_augmentations_on_renderings_are_refused_before_any_write(tmp_path: Path) -> None:
    from solo_equimod.errors import ConfigError
    from tests.conftest import tiny_pretrain_cfg

    cfg = tiny_pretrain_cfg("simclr", tmp_path, **{"data.dataset": "factors3d"})  # BYOL's policy: crops, jitter...
    with pytest.raises(ConfigError, match=r"rrc.enabled.*shows renderings as they are"):
        pretrain(cfg)
    assert not (tmp_path / "ckpt").exists()


def test_the_component_mean_floor_of_the_rotation_r2() -> None:
    """With one scalar mean in SS_tot, predicting each component's mean scores above 0: the quaternion's
    w is near 1 and x, y, z near 0; computed by hand here from the same pairs."""
    from solo_equimod.eval.objects import random_pairs
    from solo_equimod.eval.probes3d import mean_predictor_r2, pair_inputs

    cfg = OmegaConf.create({"seed": 0, "val_pairs": 5})
    train, val = rotated_objects(40, 10, seed=0), rotated_objects(20, 10, seed=1)
    got = mean_predictor_r2(train, val, TARGETS["rotation"], cfg)
    y_train = pair_inputs(train, random_pairs(np.random.default_rng(0), 40, 10, 5), slice(0), TARGETS["rotation"])[1]
    y_val = pair_inputs(val, random_pairs(np.random.default_rng(1), 20, 10, 5), slice(0), TARGETS["rotation"])[1]
    sse = ((y_val - y_train.mean(0)) ** 2).sum()
    assert got["r2"] == pytest.approx(float(1 - sse / ((y_val - y_val.mean()) ** 2).sum()), rel=1e-6)
    assert got["r2"] > 0.1
    assert got["r2_column_means"] == pytest.approx(float(1 - sse / ((y_val - y_val.mean(0)) ** 2).sum()), abs=1e-6)
    assert abs(got["r2_column_means"]) < 0.05  # the training mean is near the validation mean
