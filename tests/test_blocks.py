"""The public building blocks (`solo_equimod.blocks`) against independent references: views re-made
from the returned parameters, objectives built by the pretraining pipeline, naive loss loops."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from solo_equimod.augment.per_image_applier import apply_view_params
from solo_equimod.augment.pipeline import normalize
from solo_equimod.augment.policy import policies_from_config
from solo_equimod.blocks import (
    BatchedViews,
    CARELoss,
    EquiModLoss,
    ParamViews,
    SIELoss,
    ViewPolicy,
    make_objective,
    policy_entry,
    prepare_objective,
)
from solo_equimod.errors import ConfigError
from solo_equimod.losses.equimod import equimod_loss
from solo_equimod.losses.sie import sie_loss
from solo_equimod.objectives.base import ObjectiveContext
from solo_equimod.objectives.compose import build_objectives, canonical_config
from tests.conftest import REPO

POLICIES = [ViewPolicy(crop_size=24, blur_prob=0.5, solarize_prob=0.2), ViewPolicy(crop_size=24)]
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _images(n: int, size: int = 40) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(n), dtype=torch.uint8)


def test_param_views_reapplied_parameters_remake_each_view() -> None:
    torch.manual_seed(0)
    transform = ParamViews(POLICIES, MEAN, STD, original=True)
    image = _images(1)[0]
    views, params, original = transform(image)
    assert len(views) == len(params) == 2 and torch.allclose(original, normalize(image, MEAN, STD))
    for view, vector, policy in zip(views, params, POLICIES):
        again = apply_view_params(image, transform.layout.decode(vector), policy)
        assert torch.allclose(view, normalize(again, MEAN, STD), atol=1e-6)
    assert len(ParamViews(POLICIES)(image)) == 2  # (views, params) without the original


def test_batched_views_match_the_per_image_path_on_their_parameters() -> None:
    images = _images(6)
    views, params = BatchedViews(POLICIES, MEAN, STD)(images, torch.Generator().manual_seed(1))
    layout = BatchedViews(POLICIES).layout
    for view, vectors, policy in zip(views, params, POLICIES):
        assert view.shape == (6, 3, 24, 24) and vectors.shape == (6, layout.dim)
        for b in range(6):
            reference = normalize(apply_view_params(images[b], layout.decode(vectors[b]), policy), MEAN, STD)
            levels = ((view[b] - reference) * torch.tensor(STD)[:, None, None] * 255).abs()
            assert levels.mean() <= 1.0  # the batched applier's documented rounding bound
    with pytest.raises(ValueError, match="uint8"):
        BatchedViews(POLICIES)(images.float())


def test_policy_entry_round_trips_through_the_config_reader() -> None:
    assert policies_from_config([policy_entry(p) for p in POLICIES]) == POLICIES


@pytest.mark.parametrize("name,settings", [("equimod", {"proj_hidden_dim": 32, "temperature": 0.3}),
                                           ("augself", {"hidden_dim": 16}), ("rotation", {"hidden_dim": 16})])
def test_make_objective_equals_the_pipelines_objective(name: str, settings: dict) -> None:
    policies = policies_from_config(OmegaConf.load(REPO / "scripts/pretrain/cifar/augmentations/byol.yaml"))
    torch.manual_seed(3)
    mine = make_objective(name, 16, policies, dataset="cifar10", **settings)
    cfg = canonical_config(OmegaConf.create({
        "method": "simclr", "data": {"dataset": "cifar10"}, "objectives": {name: settings},
        "augmentations": OmegaConf.load(REPO / "scripts/pretrain/cifar/augmentations/byol.yaml")}))
    torch.manual_seed(3)
    theirs = build_objectives(cfg, ObjectiveContext(cfg, 16, False, None))[name]
    assert mine.settings == theirs.settings
    assert mine.state_dict().keys() == theirs.state_dict().keys()
    assert all(torch.equal(v, theirs.state_dict()[k]) for k, v in mine.state_dict().items())


def test_make_objective_refuses_an_unknown_setting_by_name() -> None:
    with pytest.raises(ConfigError, match="objectives.equimod.temprature"):
        make_objective("equimod", 16, POLICIES, temprature=0.2)
    with pytest.raises(ConfigError, match="objectives.care.chunks"):
        make_objective("care", 16, POLICIES, batch_size=8, chunks=8, head="own")


def test_equimod_objective_on_named_inputs_is_eq4_on_its_heads() -> None:
    torch.manual_seed(0)
    transform = ParamViews(POLICIES, original=True)
    objective = make_objective("equimod", 8, POLICIES, proj_hidden_dim=16, proj_output_dim=8, param_embed_dim=4)
    prepare_objective(objective, transform, [(40, 40)])
    sample = transform.sample_param_vectors([(40, 40)], 10000, 0)  # param_stats_samples, _seed
    assert torch.allclose(objective.param_normalizer.mean, sample.mean(0))  # Appendix A.1's statistics
    params = [sample[:6], sample[6:12]]
    feats = {"original": torch.randn(6, 8), "views": [torch.randn(6, 8), torch.randn(6, 8)]}
    loss = objective({"params": params}, feats)["loss"]
    z_o = objective.projector(torch.cat([feats["original"], *feats["views"]]))
    z_views, z_orig = [z_o[6:12], z_o[12:]], z_o[:6]
    z_preds = objective.predictor(torch.cat([z_orig.repeat(2, 1), objective.param_encoder(
        objective.param_normalizer(torch.cat(params)))], dim=1)).split(6)
    assert torch.allclose(loss, equimod_loss(z_views, list(z_preds), 0.2), atol=1e-6)


def test_loss_modules_check_settings_and_equal_their_references() -> None:
    z = [torch.randn(8, 5) for _ in range(4)]
    assert torch.equal(EquiModLoss(0.3, "official")(z[:2], z[2:]), equimod_loss(z[:2], z[2:], 0.3, "official"))
    with pytest.raises(ValueError, match="temperature"):
        EquiModLoss(0.0)
    with pytest.raises(ValueError, match="variant"):
        EquiModLoss(variant="offical")
    a, b = torch.nn.functional.normalize(z[0], dim=1), torch.nn.functional.normalize(z[1], dim=1)
    naive = []
    for c in range(2):  # two chunks of four rows: 2 * mean over rows of the off-diagonal squared Gram differences
        rows = slice(4 * c, 4 * c + 4)
        d = a[rows] @ a[rows].T - b[rows] @ b[rows].T
        naive.append(2 * sum(float(d[i, j] ** 2) for i in range(4) for j in range(4) if i != j) / 4)
    assert CARELoss(2)(a, b).item() == pytest.approx(sum(naive) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="chunks"):
        CARELoss(0)
    out = SIELoss(equi_factor=0.5)((z[0], z[1]), (z[2], z[3]), z[1])
    assert torch.equal(out["loss"], sie_loss((z[0], z[1]), (z[2], z[3]), z[1], equi_factor=0.5)["loss"])
    with pytest.raises(ValueError, match="std_coeff"):
        SIELoss(std_coeff=-1)
