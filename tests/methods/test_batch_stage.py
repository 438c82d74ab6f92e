"""The batch stage (`solo_equimod/methods/batch_stage.py`): the original arrives as uint8 levels and is
normalised once where the step encodes it (EquiMod), never where it is only made from (CARE); what
objectives make is normalised once; a normalised original or a float made image is refused by name.
And EquiMod between views (`objectives.equimod_views`): its declared inputs, its loss by hand, and the
data checks that send each EquiMod to the data whose params it reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from solo_equimod.config.preflight import check_pretrain_config
from solo_equimod.config.schema import validate
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.errors import ConfigError
from solo_equimod.losses.equimod import equimod_loss
from solo_equimod.methods import METHODS, BaseMethod
from solo_equimod.objectives import OBJECTIVES
from solo_equimod.objectives.compose import objective_settings
from tests.conftest import tiny_pretrain_cfg
from tests.helpers.factors3d import factors3d_cfg
from tests.helpers.training import fixed_batch


def _normalised(images: torch.Tensor, dataset: str) -> torch.Tensor:
    """uint8 levels -> (x / 255 - mean) / std, per channel, written out."""
    info = DATASET_INFO[dataset]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (info.mean, info.std))
    return (images.float() / 255 - mean) / std


def _model(tmp_path: Path, method: str, **overrides: object) -> BaseMethod:
    torch.manual_seed(0)
    return METHODS[method](tiny_pretrain_cfg(method, tmp_path, augmentations="care", **{"data.num_classes": 10,
                                                                                        **overrides}))


def test_the_original_is_normalised_once_where_it_is_encoded(tmp_path: Path) -> None:
    model = _model(tmp_path, "simclr_equimod")
    batch = fixed_batch(model.cfg)
    staged = model.batch_stage(batch)
    torch.testing.assert_close(staged["original"], _normalised(batch["original"], "synthetic"))
    assert staged["views"] is batch["views"]  # the loader's views arrive normalised and pass through
    assert batch["original"].dtype == torch.uint8  # the loader's batch is not changed


def test_made_inputs_are_normalised_and_an_original_only_made_from_is_not(tmp_path: Path) -> None:
    model = _model(tmp_path, "simclr", objectives={"care": {"chunks": 4}})
    batch = fixed_batch(model.cfg)
    torch.manual_seed(3)
    staged = model.batch_stage(batch)
    torch.manual_seed(3)
    made = model.objectives["care"].derive(batch)["extras"]["care"]  # the same draws, uint8
    assert staged["original"] is batch["original"]  # CARE does not encode it: never normalised
    for key in ("view1", "view2"):
        assert made[key].dtype == torch.uint8
        torch.testing.assert_close(staged["extras"]["care"][key], _normalised(made[key], "synthetic"))


def test_a_staged_batch_passes_through_unchanged(tmp_path: Path) -> None:
    model = _model(tmp_path, "simclr_equimod")
    staged = model.batch_stage(fixed_batch(model.cfg))
    again = model.batch_stage(staged)  # a normalised (floating-point) original is not normalised twice
    assert again["original"] is staged["original"] and again["views"] is staged["views"]


def test_an_original_that_is_not_levels_or_a_float_made_image_is_refused_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(tmp_path, "simclr_equimod")
    batch = fixed_batch(model.cfg)
    with pytest.raises(ValueError, match=r"batch\['original'\] must be uint8 levels or normalised floats "
                                         r"\(B, 3, H, W\), got torch.int64 \(16, 3, 32, 32\)"):
        model.batch_stage({**batch, "original": batch["original"].long()})
    model = _model(tmp_path, "simclr", objectives={"care": {"chunks": 4}})
    batch = fixed_batch(model.cfg)
    with pytest.raises(ValueError, match=r"batch\['original'\] must be uint8 levels \(B, 3, H, W\), got "
                                         r"torch.float32 \(16, 3, 32, 32\): the batch stage normalises levels"):
        model.batch_stage({**batch, "original": _normalised(batch["original"], "synthetic")})  # CARE makes from it
    care = model.objectives["care"]
    derive = care.derive
    monkeypatch.setattr(care, "derive", lambda b: {"extras": {"care": {
        k: v.float() if k.startswith("view") else v for k, v in derive(b)["extras"]["care"].items()}}})
    with pytest.raises(ValueError, match=r"CARE.derive's 'extras.care.view1' must be uint8 levels"):
        model.batch_stage(batch)


# ----- EquiMod between views ----------------------------------------------------------------------------
def test_equimod_views_reads_the_views_only_and_its_loss_is_view_2_from_view_1(tmp_path: Path) -> None:
    cfg = factors3d_cfg("simclr_equimod", tmp_path, **{"data.num_classes": 6})
    assert list(cfg.objectives) == ["equimod_views"]
    model = METHODS[cfg.method](cfg)
    objective = model.objectives["equimod_views"]
    assert (objective.inputs, objective.encodes, objective.makes) == ((), (), ())
    assert OBJECTIVES["equimod"].encodes == ("original",)  # a class-level declaration each, no instance override
    g = torch.Generator().manual_seed(0)
    h1, h2 = torch.randn(8, model.features_dim, generator=g), torch.randn(8, model.features_dim, generator=g)
    params = [torch.zeros(8, 4), torch.nn.functional.normalize(torch.randn(8, 4, generator=g), dim=1)]
    loss = objective({"params": params}, {"views": [h1, h2]})["loss"]
    z1, z2 = objective.projector(torch.cat([h1, h2])).chunk(2)  # joint head batches: g' on both views at once
    t = objective.param_encoder(objective.param_normalizer(params[1]))
    z_pred = objective.predictor(torch.cat([z1, t], dim=1))
    s = objective.settings
    torch.testing.assert_close(loss, equimod_loss([z2], [z_pred], s.temperature, s.loss_variant))


def test_each_equimod_is_refused_on_the_other_kind_of_params_naming_the_right_one(tmp_path: Path) -> None:
    cfg = factors3d_cfg("simclr_equimod", tmp_path)
    with pytest.raises(ConfigError, match=r"objectives.equimod predicts views from the original, but the params of "
                                          r"data.dataset='factors3d' take the first view to each view; use "
                                          r"objectives.equimod_views"):
        objective_settings("equimod", OmegaConf.to_container(cfg.objectives.equimod_views), cfg)
    cfg = validate(tiny_pretrain_cfg("simclr", tmp_path, objectives={"equimod_views": {}}))
    with pytest.raises(ConfigError, match=r"objectives.equimod_views predicts views from the first view, but the "
                                          r"params of data.dataset='synthetic' take the original to each view; use "
                                          r"objectives.equimod"):
        check_pretrain_config(cfg)
