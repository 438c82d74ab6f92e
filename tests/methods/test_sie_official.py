"""SIE's step against a naive re-implementation of the official formulas (facebookresearch/SIE
src/models.py `SIE.forward`, `Projector`; src/hypernetwork.py `ParametrizedNet` with the README's
linear hypernetwork; src/dataset.py's group element quat(R1^-1 R2)), with our model's weights, on one
fixed batch: the projectors written as Linear / batch-norm / ReLU calls, the predictor's weights cut
from the hypernetwork's output as `ParametrizedNet.forward` cuts them, and the loss's terms as the
official code writes them (centred, unbiased variance + 1e-4, covariance over batch_size - 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F

from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.config.schema import validate
from solo_equimod.data.views3d import GROUPS
from solo_equimod.methods import METHODS

REPO = Path(__file__).resolve().parents[2]
BATCH = 12


def official_projector(layers: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Projector(embedding, mlp): (Linear, BatchNorm1d in training mode, ReLU) per hidden layer, Linear
    without bias. The official hidden Linears have a bias, ours (lightly's ProjectionHead before a batch
    norm) none: the batch norm's mean subtraction cancels it, so a random one is added here."""
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    norms = [m for m in layers if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == len(linears) - 1 and linears[-1].bias is None
    g = torch.Generator().manual_seed(5)
    for linear, norm in zip(linears[:-1], norms):
        x = x @ linear.weight.T + torch.randn(linear.out_features, generator=g, dtype=x.dtype)
        mean, var = x.mean(0), x.var(0, unbiased=False)
        x = torch.relu((x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias)
    return x @ linears[-1].weight.T


def official_predictor(hypernet_weight: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """ParametrizedNet(equi, 4) with --predictor '' and no biases: one layer equi -> equi whose
    (out, in) weight is hypernet(z)[..., :equi * equi].view(-1, out, in); out = bmm(x, w^T)."""
    dim = x.shape[-1]
    weights = z @ hypernet_weight.T  # HyperNet: Linear(latent, params, bias=False)
    w = weights[..., :dim * dim].view(-1, dim, dim)
    return torch.bmm(x.unsqueeze(1), torch.transpose(w, -2, -1)).squeeze()


def off_diagonal(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def official_loss(x_inv, y_inv, x_equi, y_equi, y_equi_pred, args) -> torch.Tensor:
    """models.py SIE.forward's loss, term by term."""
    repr_loss_inv = F.mse_loss(x_inv, y_inv)
    repr_loss_equi = F.mse_loss(y_equi_pred, y_equi)
    pred = y_equi_pred - y_equi_pred.mean(dim=0)
    pred_std_loss = torch.mean(F.relu(1 - torch.sqrt(pred.var(dim=0) + 0.0001))) / 2
    x, y = torch.cat((x_inv, x_equi), dim=1), torch.cat((y_inv, y_equi), dim=1)
    x, y = x - x.mean(dim=0), y - y.mean(dim=0)
    std_loss = (torch.mean(F.relu(1 - torch.sqrt(x.var(dim=0) + 0.0001))) / 2
                + torch.mean(F.relu(1 - torch.sqrt(y.var(dim=0) + 0.0001))) / 2)
    cov_x, cov_y = (x.T @ x) / (args["batch_size"] - 1), (y.T @ y) / (args["batch_size"] - 1)
    cov_loss = off_diagonal(cov_x).pow(2).sum().div(cov_x.shape[0]) + off_diagonal(cov_y).pow(2).sum().div(cov_x.shape[0])
    return (args["sim_coeff"] * repr_loss_inv + args["equi_factor"] * args["sim_coeff"] * repr_loss_equi
            + args["std_coeff"] * std_loss + args["std_coeff"] * pred_std_loss + args["cov_coeff"] * cov_loss)


def scipy_relative_quat(a1: np.ndarray, a2: np.ndarray) -> np.ndarray:
    """src/dataset.py: (R.from_euler("xyz", a1).inv() * R.from_euler("xyz", a2)).as_quat(), written from
    the matrices (Shepperd's method for the quaternion, sign fixed by comparing with ours up to sign)."""
    def matrix(a):
        ca, sa, cb, sb, cc, sc = np.cos(a[0]), np.sin(a[0]), np.cos(a[1]), np.sin(a[1]), np.cos(a[2]), np.sin(a[2])
        rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
        ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
        rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
        return rz @ ry @ rx  # extrinsic x, then y, then z
    m = matrix(a1).T @ matrix(a2)
    w = np.sqrt(max(0.0, 1 + np.trace(m))) / 2
    return np.array([(m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w), (m[1, 0] - m[0, 1]) / (4 * w), w])


@pytest.mark.parametrize("group", ["rot", "rotcolor"])
def test_sie_step_equals_the_official_formulas_on_one_batch(tmp_path: Path, group: str) -> None:
    register_schemas()
    with initialize_config_dir(str(REPO / "scripts/pretrain/factors3d"), version_base="1.3"):
        cfg = validate(compose(config_name="sie", overrides=[
            "backbone.kwargs.width=8", "data.num_workers=0", f"checkpoint.dir={tmp_path}", f"data.group={group}",
            "method_kwargs.equi_dim=12", "method_kwargs.mlp=[64,64,64]", f"optimizer.batch_size={BATCH}"]))
    OmegaConf.update(cfg, "data.num_classes", 6, force_add=True)
    model = METHODS["sie"](cfg).double()
    rng = np.random.default_rng(0)
    latents = np.concatenate([rng.uniform(-np.pi / 2, np.pi / 2, (2, BATCH, 3)), rng.random((2, BATCH, 4))], -1)
    g = torch.from_numpy(GROUPS[group].element(latents[0], latents[1])).double()
    official_g = np.stack([np.concatenate([scipy_relative_quat(latents[0, i, :3], latents[1, i, :3]),
                                           latents[1, i, 3:] - latents[0, i, 3:]]) for i in range(BATCH)])
    official_g = official_g[:, :4] if group == "rot" else official_g[:, [0, 1, 2, 3, 4, 7]]  # SIERotColor: [3, 6]
    # quat(R1^-1 R2) as scipy: equal up to the quaternion's sign (w > 0 here, |angles| < pi/2 pairs)
    signs = np.sign((official_g[:, :4] * g[:, :4].numpy()).sum(1, keepdims=True))
    assert np.allclose(g.numpy(), np.concatenate([official_g[:, :4] * signs, official_g[:, 4:]], 1), atol=1e-6)
    views = [torch.randn(BATCH, 3, 16, 16, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
             for k in range(2)]
    batch = {"views": views, "params": [torch.zeros_like(g), g], "target": torch.zeros(BATCH, dtype=torch.long)}
    got = model.method_loss([model.backbone(v) for v in views], batch)["loss"]

    h1, h2 = (model.backbone(v) for v in views)  # the backbone is shared: the formulas start at its features
    inv = model.inv_dim
    proj_inv, proj_equi = (list(m.modules()) for m in (model.projector_inv, model.projector_equi))
    x_inv, y_inv = official_projector(proj_inv, h1[:, :inv]), official_projector(proj_inv, h2[:, :inv])
    x_equi, y_equi = official_projector(proj_equi, h1[:, inv:]), official_projector(proj_equi, h2[:, inv:])
    assert (x_inv.shape[1], x_equi.shape[1]) == (40, 24)  # np.round(mlp * ratio): 64 x 20 / 32, 64 x 12 / 32
    pred = official_predictor(model.predictor.hypernet.weight, x_equi, g)
    args = {"batch_size": BATCH, "sim_coeff": 10.0, "std_coeff": 10.0, "cov_coeff": 1.0, "equi_factor": 0.45}
    expected = official_loss(x_inv, y_inv, x_equi, y_equi, pred, args)
    assert float(got.detach()) == pytest.approx(float(expected.detach()), rel=1e-10)
    assert torch.allclose(model.predict(x_equi, g), pred, atol=1e-12)
