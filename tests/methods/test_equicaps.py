"""EquiCaps (solo_equimod.methods.equicaps): self-routing on a hand-computed case and against a loop
re-implementation of the official layer's formulas, each loss term against a naive loop, the relative
rotation matrix against one built from the Euler angles, the pre-pool feature map against the
backbone cut before its pooling, training on a fixed batch and on the factor bench, exact reloading."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from solo_equimod.backbones import FeatureMapTap, build_backbone
from solo_equimod.config.preflight import check_pretrain_config
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.data.pretrain import build_split
from solo_equimod.data.rotations import euler_xyz_matrix, relative_quat
from solo_equimod.data.views3d import view_tensor
from solo_equimod.errors import ConfigError
from solo_equimod.eval.__main__ import main as eval_main
from solo_equimod.eval.objects import encode_objects
from solo_equimod.losses.equicaps import equicaps_loss
from solo_equimod.methods import METHODS
from solo_equimod.methods.capsules import SelfRouting, quat_matrix
from solo_equimod.run.checkpoints import load_method
from solo_equimod.run.training import pretrain
from tests.helpers.factors3d import factors3d_cfg
from tests.helpers.naive import naive_cov, naive_std
from tests.helpers.training import train_on_fixed_batch


def naive_routing(layer: SelfRouting, a: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sr_capsnet.py SelfRouting2d with a full-map kernel, one sample, capsule by capsule: input capsule i
    is (position p = row * W + col, capsule c), i = p * caps + c, as F.unfold orders the kernel."""
    caps, dim = layer.caps, layer.dim
    _, h, w = a.shape
    a_out, pose_out = torch.zeros(caps, dtype=a.dtype), torch.zeros(caps, dim, dtype=a.dtype)
    act, votes, routes = [], [], []
    for p in range(h * w):
        for c in range(caps):
            i = p * caps + c
            u = pose[c * dim:(c + 1) * dim, p // w, p % w]
            logits = torch.stack([layer.W2[i, j] @ u + layer.b2[i, j] for j in range(caps)])
            routes.append(torch.softmax(logits, 0))
            votes.append(torch.stack([layer.W1[i, j * dim:(j + 1) * dim] @ u for j in range(caps)]))
            act.append(a[c, p // w, p % w])
    for j in range(caps):
        weights = [act[i] * routes[i][j] for i in range(len(act))]
        a_out[j] = sum(weights) / sum(act)
        pose_out[j] = sum(wt * v[j] for wt, v in zip(weights, votes)) / sum(weights)
    return a_out, pose_out


def test_self_routing_with_equal_routes_averages_the_votes_by_activation() -> None:
    """W2 = b2 = 0 (the initialisation): every route is 1/caps, so each output activation is 1/caps and
    each output pose the activation-weighted mean of the votes W1_i u_i. 1x1 map, 2 capsules of dim 1."""
    layer = SelfRouting(caps=2, dim=1, map_size=(1, 1))
    with torch.no_grad():
        layer.W1.copy_(torch.tensor([[[1.0], [2.0]], [[3.0], [-1.0]]]))  # W1[i] maps u_i to the votes for j = 0, 1
    a = torch.tensor([0.25, 0.75]).view(1, 2, 1, 1)
    u = torch.tensor([2.0, 4.0]).view(1, 2, 1, 1)
    a_out, pose_out = layer(a, u)
    # votes for j=0: 1*2, 3*4 -> (0.25*2 + 0.75*12) / 1 = 9.5; for j=1: 2*2, -1*4 -> 0.25*4 - 0.75*4 = -2
    assert a_out.tolist() == [[0.5, 0.5]]
    assert pose_out.squeeze(-1).tolist() == [[9.5, -2.0]]


def test_self_routing_equals_the_official_formulas_capsule_by_capsule() -> None:
    torch.manual_seed(0)
    layer = SelfRouting(caps=3, dim=4, map_size=(2, 3)).double()
    with torch.no_grad():
        layer.W2.normal_()
        layer.b2.normal_()
    a = torch.rand(2, 3, 2, 3, dtype=torch.float64)
    pose = torch.randn(2, 12, 2, 3, dtype=torch.float64)
    a_out, pose_out = layer(a, pose)
    for b in range(2):
        ref_a, ref_pose = naive_routing(layer, a[b], pose[b])
        torch.testing.assert_close(a_out[b], ref_a)
        torch.testing.assert_close(pose_out[b], ref_pose)
    torch.testing.assert_close(a_out.sum(1), torch.ones(2, dtype=torch.float64))  # a distribution over capsules


def test_the_relative_rotation_matrix_equals_the_euler_matrices_product() -> None:
    """quat_matrix(quat(R1^-1 R2)), from the loaders' group element, = R1^T R2 built from the Euler angles."""
    angles = np.random.default_rng(0).uniform(-math.pi, math.pi, size=(2, 5, 3))
    expected = np.swapaxes(euler_xyz_matrix(angles[0]), -1, -2) @ euler_xyz_matrix(angles[1])
    got = quat_matrix(torch.from_numpy(relative_quat(angles[0], angles[1])))
    torch.testing.assert_close(got, torch.from_numpy(expected))


def test_every_loss_term_equals_a_naive_loop() -> None:
    """models.py EquiCaps_3x3.forward written out: 0.1 CE + 5 MSE(P(x M), P(y)) + 10 (v(x) + v(y)) / 2
    + c(x) + c(y) + sum_views (log K - H(mean activations)), x = [x_inv ; P(x M)], y = [y_inv ; P(y)]."""
    g = torch.Generator().manual_seed(0)
    n, k = 6, 3
    x_inv, y_inv = (torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64), 1) for _ in range(2))
    x_pose, y_pose = (torch.randn(n, k, 3, 3, generator=g, dtype=torch.float64) for _ in range(2))
    rotation = torch.randn(n, 3, 3, generator=g, dtype=torch.float64)
    got = equicaps_loss((x_inv, y_inv), (x_pose, y_pose), rotation)

    ce = sum(-float(y_inv[b, c]) * math.log(float(x_inv[b, c])) for b in range(n) for c in range(k)) / n
    moved = torch.zeros_like(x_pose)
    target = torch.zeros_like(y_pose)
    for b in range(n):
        for c in range(k):
            m = sum(x_pose[b, c, :, t:t + 1] * rotation[b, t:t + 1, :] for t in range(3))  # x_pose @ M by columns
            moved[b, c] = m / math.sqrt(float((m ** 2).sum()))
            target[b, c] = y_pose[b, c] / math.sqrt(float((y_pose[b, c] ** 2).sum()))
    mse = float(((moved - target) ** 2).sum()) / moved.numel()

    def entropy_gap(acts: torch.Tensor) -> float:
        mean = [sum(float(acts[b, c]) for b in range(n)) / n for c in range(k)]
        return math.log(k) + sum(p * math.log(p) for p in mean)

    x, y = torch.cat([x_inv, moved.flatten(1)], 1), torch.cat([y_inv, target.flatten(1)], 1)
    terms = {"inv_loss": ce, "equi_loss": mse, "std_loss": naive_std(x) / 2 + naive_std(y) / 2,
             "cov_loss": naive_cov(x, n) + naive_cov(y, n), "memax_loss": entropy_gap(x_inv) + entropy_gap(y_inv)}
    for name, value in terms.items():
        assert float(got[name]) == pytest.approx(value, rel=1e-9, abs=1e-12), name
    total = 0.1 * ce + 5 * mse + 10 * terms["std_loss"] + terms["cov_loss"] + terms["memax_loss"]
    assert float(got["loss"]) == pytest.approx(total, rel=1e-9)


@pytest.mark.parametrize("name", ["tiny_cnn", "resnet18"])
def test_the_tapped_feature_map_is_the_backbone_cut_before_its_pooling(name: str) -> None:
    torch.manual_seed(0)
    net, _ = build_backbone(name, cifar=True, **({"width": 8} if name == "tiny_cnn" else {}))
    net.eval()
    tap = FeatureMapTap(net, name)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        pooled = net(x)
        if name == "tiny_cnn":
            cut = net[:-2](x)
        else:
            cut = net.layer4(net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x))))))))
    torch.testing.assert_close(tap.last, cut)
    torch.testing.assert_close(pooled, cut.mean((2, 3)))


def _model_and_batch(tmp_path: Path, num_caps: int = 4):
    torch.manual_seed(0)
    cfg = factors3d_cfg("equicaps", tmp_path, **{"method_kwargs.num_caps": num_caps, "data.num_classes": 6})
    g = torch.Generator().manual_seed(0)
    quats = torch.nn.functional.normalize(torch.randn(16, 4, generator=g), dim=1)
    batch = {"views": [torch.randn(16, 3, 32, 32, generator=g) for _ in range(2)],
             "params": [torch.tensor([[0.0, 0, 0, 1]]).repeat(16, 1), quats], "target": torch.zeros(16, dtype=torch.long)}
    return METHODS["equicaps"](cfg), batch


def test_the_step_reads_the_views_feature_maps_through_the_capsules(tmp_path: Path) -> None:
    """The loss of `ssl_step` equals `equicaps_loss` on the capsules of the backbone's cut maps (one
    backbone call for both views, as the library encodes views) and R1^-1 R2 from the group element."""
    model, batch = _model_and_batch(tmp_path)
    model.train()
    torch.manual_seed(1)
    got = model.ssl_step(batch)[0]
    cut = model.backbone[:-2](torch.cat(batch["views"]))
    (x_inv, x_pose), (y_inv, y_pose) = (model.projector(m) for m in cut.chunk(2))
    expected = equicaps_loss((x_inv, y_inv), (x_pose, y_pose), quat_matrix(batch["params"][1]))
    torch.testing.assert_close(got["equicaps_loss"], expected["loss"])


def test_the_loss_goes_down_on_a_fixed_batch_and_a_checkpoint_reloads_exactly(tmp_path: Path) -> None:
    model, batch = _model_and_batch(tmp_path)
    losses = [step["loss"] for step in train_on_fixed_batch(model, batch, steps=8)]
    assert losses[-1] < 0.9 * losses[0]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    again = METHODS["equicaps"](model.cfg)
    again.load_state_dict(state)
    model.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again.ssl_step(batch)[0]["loss"], model.ssl_step(batch)[0]["loss"], rtol=0, atol=0)


def test_the_pose_prediction_moves_each_pose_by_the_relative_rotation(tmp_path: Path) -> None:
    """predict(embed(map), g) = every normalised pose times R(g), normalised: by hand for a 90-degree
    turn about z, and the identity element predicts the embedding itself."""
    model, _ = _model_and_batch(tmp_path)
    z = model.embed(torch.randn(3, 32, 8, 8))
    assert z.shape == (3, 4 * 9)
    torch.testing.assert_close(z.view(3, 4, 3, 3).norm(dim=(-2, -1)), torch.ones(3, 4))
    identity = torch.tensor([[0.0, 0, 0, 1]]).repeat(3, 1)
    torch.testing.assert_close(model.predict(z, identity), z)
    quarter = torch.tensor([[0.0, 0, math.sin(math.pi / 4), math.cos(math.pi / 4)]]).repeat(3, 1)
    poses = z.view(3, 4, 3, 3)
    turned = torch.stack([poses[..., 1], -poses[..., 0], poses[..., 2]], -1)  # P Rz(90): columns (c2, -c1, c3)
    torch.testing.assert_close(model.predict(z, quarter), turned.flatten(1), atol=1e-6, rtol=1e-5)


def test_equicaps_trains_on_the_factor_bench_reloads_and_gets_sies_measures(tmp_path: Path) -> None:
    """Two steps on the factor bench; the checkpoint reloads exactly; PRE and MRR run through the poses
    (`embed` of the pre-pool map kept while encoding), rotation R^2 on the pooled features."""
    cfg = factors3d_cfg("equicaps", tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                        **{"data.synthetic_size": 64, "optimizer.batch_size": 16, "method_kwargs.num_caps": 4})
    ckpt = pretrain(cfg)
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    method = load_method(ckpt)
    assert all(torch.equal(v, state[k]) for k, v in method.state_dict().items())
    objects = build_split(OmegaConf.merge(method.cfg, {"data": {"synthetic_size": 64}}), "val", transform=None)
    enc = encode_objects(method, objects, max_objects=3)
    info = DATASET_INFO["factors3d"]
    first = view_tensor(objects.image(0, 1), 32, info.mean, info.std).unsqueeze(0)
    with torch.no_grad():
        torch.testing.assert_close(enc.embedded[0, 1], method.embed(method.backbone[:-2](first))[0])
    common = [str(ckpt), "max_objects=6", "max_epochs=1", "hidden_dim=16"]
    for measure in ("pre", "mrr", "rotation"):
        assert eval_main([measure, *common]) == 0
    mrr = json.loads((ckpt.parent / "mrr_factors3d-last.json").read_text())["mrr"]
    assert 0 < mrr["mrr"] <= 1 and set(mrr) == {"mrr", "h@1", "h@2", "h@5", "h@10"}


def test_equicaps_needs_group_elements_and_a_feature_map(tmp_path: Path) -> None:
    cfg = factors3d_cfg("equicaps", tmp_path, **{"data.num_classes": 6})
    images = OmegaConf.merge(cfg, {"data": {"dataset": "synthetic"}})
    with pytest.raises(ConfigError, match="method=equicaps needs view pairs with relative rotations"):
        check_pretrain_config(images)
    with pytest.raises(ConfigError, match="backbone.name='vit_tiny_patch16_224' has no global average pooling"):
        FeatureMapTap(build_backbone("vit_tiny_patch16_224")[0], "vit_tiny_patch16_224")
