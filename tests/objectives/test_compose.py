"""Objectives compose onto any method: EquiMod plus a second objective defined here, on SimCLR and
BYOL; the total is the method's loss plus the weighted objective losses computed by hand; every
objective's modules get gradients; each input goes through the backbone once, one call per input
shape; logs do not collide; configs add and remove objectives; models pickle."""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import pickle
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn import functional as F

from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.config.schema import validate
from solo_equimod.config.settings import setting
from solo_equimod.data.batch import Batch
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.errors import ConfigError
from solo_equimod.losses.equimod import equimod_loss
from solo_equimod.methods import METHODS
from solo_equimod.objectives import OBJECTIVES, Features, Objective, ObjectiveContext
from solo_equimod.objectives.base import ObjectiveSettings
from solo_equimod.run.checkpoints import load_method
from solo_equimod.run.training import pretrain
from tests.conftest import REPO, tiny_pretrain_cfg
from tests.helpers.training import fixed_batch

SMALL_HEADS = {"proj_hidden_dim": 32, "pred_hidden_dim": 32, "proj_output_dim": 16}


def _small_gray(side: int, image: torch.Tensor) -> torch.Tensor:
    """uint8 CHW image -> a grayscale float copy of side `side` (3 channels)."""
    gray = image.float().mean(0, keepdim=True).expand(3, -1, -1) / 255
    return F.interpolate(gray[None], size=(side, side), mode="bilinear", align_corners=False)[0]


@dataclass
class GrayMatchSettings(ObjectiveSettings):
    weight: float = setting(0.5, "weight of the test objective", ge=0)
    side: int = setting(16, "side of the small grayscale copy", ge=1)


class GrayMatch(Objective):
    """A second objective for these tests: a linear head maps the features of a small grayscale
    copy of each image (an extra input the pipeline makes) onto the first view's features."""

    SETTINGS: ClassVar[type[ObjectiveSettings]] = GrayMatchSettings
    encodes: ClassVar[tuple[str, ...]] = ("extras.gray_match_image",)

    def __init__(self, settings: GrayMatchSettings, context: ObjectiveContext) -> None:
        super().__init__(settings, context)
        self.head = nn.Linear(context.features_dim, context.features_dim)

    @classmethod
    def extras(cls, settings: GrayMatchSettings, cfg: DictConfig) -> dict[str, Any]:
        return {"gray_match_image": functools.partial(_small_gray, settings.side)}

    def forward(self, batch: Batch, feats: Features) -> dict[str, torch.Tensor]:
        pred = self.head(feats["extras.gray_match_image"])
        return {"loss": F.mse_loss(pred, feats["views"][0].detach()),
                "cosine": F.cosine_similarity(pred, feats["views"][0], dim=1).mean().detach()}


@pytest.fixture
def gray_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OBJECTIVES, "gray_match", GrayMatch)


def _two_objective_cfg(method: str, tmp_path: Any, **overrides: Any) -> DictConfig:
    return tiny_pretrain_cfg(method, tmp_path, **{"data.num_classes": 10, "method_kwargs": SMALL_HEADS if method == "byol"
                                                  else {"proj_hidden_dim": 32},
                                                  "objectives": {"equimod": {"weight": 1.0, "proj_hidden_dim": 32},
                                                                 "gray_match": {"weight": 0.5}}, **overrides})


def _batch_with_gray(cfg: DictConfig, n: int = 16) -> Batch:
    batch = fixed_batch(cfg, n)
    batch["extras"] = {"gray_match_image": torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(3))}
    return batch


@pytest.mark.parametrize("method", ["simclr", "byol"])
def test_total_is_the_method_loss_plus_weighted_objectives_computed_by_hand(method, tmp_path, gray_match):
    torch.manual_seed(0)
    model = METHODS[method](_two_objective_cfg(method, tmp_path)).train()
    batch = _batch_with_gray(model.cfg)
    calls: list[tuple[int, ...]] = []
    model.backbone.register_forward_hook(lambda mod, args, out: calls.append(tuple(args[0].shape)))
    out, _ = model.ssl_step(batch)
    # one backbone call per input shape: views and original (32 px) together, the grey copy (16 px) alone
    assert calls == [(48, 3, 32, 32), (16, 3, 16, 16)]

    views, gray = batch["views"], batch["extras"]["gray_match_image"]
    info = DATASET_INFO[model.cfg.data.dataset]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (info.mean, info.std))
    original = (batch["original"].float() / 255 - mean) / std  # the uint8 original normalised, by hand
    with torch.no_grad():  # by hand, in the same BatchNorm batches
        h0, h1, h_o = model.backbone(torch.cat([*views, original])).chunk(3)
        h_g = model.backbone(gray)
        base = model.method_loss([h0, h1], batch)["loss"]
        eq = model.objectives["equimod"]  # joint BatchNorm batches, as the official code: g' on 3N rows, u on 2N
        z_o, z0, z1 = eq.projector(torch.cat([h_o, h0, h1])).chunk(3)
        p0, p1 = batch["params"]
        zh0, zh1 = eq.predictor(torch.cat([torch.cat([z_o, z_o]), eq.param_encoder(eq.param_normalizer(
            torch.cat([p0, p1])))], dim=1)).chunk(2)
        eq_loss = equimod_loss([z0, z1], [zh0, zh1], temperature=0.2, variant="paper")
        gray_loss = F.mse_loss(model.objectives["gray_match"].head(h_g), h0)
    torch.testing.assert_close(out[f"{method}_loss"], base)
    torch.testing.assert_close(out["equimod_loss"], eq_loss)
    torch.testing.assert_close(out["gray_match_loss"], gray_loss)
    torch.testing.assert_close(out["loss"], base + 1.0 * eq_loss + 0.5 * gray_loss)
    assert set(out) == {"loss", f"{method}_loss", "equimod_loss", "gray_match_loss", "gray_match_cosine"}

    out["loss"].backward()
    for name, objective in model.objectives.items():
        for pname, p in objective.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname} got no gradient"


def test_lightning_run_logs_every_term_under_its_name_and_saves_the_weights(tmp_path, gray_match):
    cfg = _two_objective_cfg("simclr", tmp_path, limit_train_batches=3)
    cfg.objectives.gray_match.side = 8
    ckpt = pretrain(cfg)
    saved = OmegaConf.load(ckpt.parent / "config.yaml")
    assert saved.objectives.equimod.weight == 1.0 and saved.objectives.gray_match.weight == 0.5
    assert saved.objectives.equimod.temperature == 0.2  # defaults are written out too
    with open(ckpt.parent / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train_loss")]
    assert rows and {"train_simclr_loss", "train_equimod_loss", "train_gray_match_loss",
                     "train_gray_match_cosine"} <= set(rows[0])
    for r in rows:
        total = float(r["train_simclr_loss"]) + float(r["train_equimod_loss"]) + 0.5 * float(r["train_gray_match_loss"])
        assert float(r["train_loss"]) == pytest.approx(total, rel=1e-5)
    model = load_method(ckpt)
    assert list(model.objectives) == ["equimod", "gray_match"]
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert torch.equal(model.objectives["gray_match"].head.weight, state["objectives.gray_match.head.weight"])


def test_the_pipeline_makes_only_what_objectives_ask_for(tmp_path, gray_match):
    from solo_equimod.data.pretrain import PretrainDataModule
    from solo_equimod.objectives.compose import pipeline_requests

    plain_cfg = validate(tiny_pretrain_cfg("simclr", tmp_path))
    plain = PretrainDataModule(plain_cfg, pipeline_requests(plain_cfg))
    sample = plain.train_dataloader().dataset[3]
    assert "original" not in sample and sample["extras"] == {}
    assert sample["image_size"].tolist() == [32, 32] and len(sample["views"]) == len(sample["params"]) == 2
    both_cfg = validate(_two_objective_cfg("simclr", tmp_path))
    both = PretrainDataModule(both_cfg, pipeline_requests(both_cfg))
    sample = both.train_dataloader().dataset[3]
    image, _ = both.train_set[3]
    expected = _small_gray(16, torch.as_tensor(list(image.getdata()), dtype=torch.uint8).view(32, 32, 3).permute(2, 0, 1))
    torch.testing.assert_close(sample["extras"]["gray_match_image"], expected)
    assert sample["original"].shape == (3, 32, 32)


def _compose(overrides: list[str], config: str = "simclr") -> DictConfig:
    register_schemas()
    with initialize_config_dir(str(REPO / "scripts/pretrain/synthetic"), version_base="1.3"):
        return validate(compose(config_name=config, overrides=overrides))


def test_command_line_adds_and_removes_objectives() -> None:
    added = _compose(["+objectives.equimod.weight=0.5"])
    assert added.method == "simclr" and added.name == "simclr_equimod-synthetic"
    assert dict(added.objectives.equimod) == {**dataclasses.asdict(OBJECTIVES["equimod"].SETTINGS()), "weight": 0.5}
    shipped = _compose([], "simclr_equimod")
    assert shipped.method == "simclr" and list(shipped.objectives) == ["equimod"]
    removed = _compose(["~objectives.equimod"], "simclr_equimod")
    assert removed.name == "simclr-synthetic" and dict(removed.objectives) == {}
    tuned = _compose(["objectives.equimod.loss_variant=official"], "simclr_equimod")
    assert tuned.objectives.equimod.loss_variant == "official"


def test_unknown_objectives_keys_and_values_name_what_exists(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"objectives.rotaton is unknown; valid objectives: .*equimod"):
        _compose(["+objectives.rotaton.weight=1.0"])
    with pytest.raises(ConfigError, match=r"objectives.equimod.temp is not a setting;.* the settings of .*temperature"):
        _compose(["+objectives.equimod.temp=0.1"])
    with pytest.raises(ConfigError, match=r"objectives.equimod.loss_variant='both' is invalid: must be one of: paper"):
        _compose(["+objectives.equimod.loss_variant=both"])


def test_old_spellings_become_objectives(tmp_path) -> None:
    """`method: simclr_equimod` with `method_kwargs.equimod` (configs and checkpoints of before)."""
    old = validate(tiny_pretrain_cfg("simclr_equimod", tmp_path, **{"method_kwargs.equimod": {"lamb": 0.3,
                                                                                            "temperature": 0.1}}))
    assert old.method == "simclr" and "equimod" not in old.method_kwargs
    assert (old.objectives.equimod.weight, old.objectives.equimod.temperature) == (0.3, 0.1)
    assert old.name == "test-simclr_equimod"


def _same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# sie and equicaps train on renderings: tests/methods/test_sie.py, tests/methods/test_equicaps.py
@pytest.mark.parametrize("method", [*sorted(set(METHODS) - {"sie", "equicaps"}), "simclr+equimod+gray_match"])
def test_models_pickle_and_torch_save(method, tmp_path, gray_match):
    cfg = (_two_objective_cfg("simclr", tmp_path) if "+" in method
           else tiny_pretrain_cfg(method, tmp_path, **{"data.num_classes": 10, "method_kwargs": {
               k: 32 for k in ("proj_hidden_dim",) if hasattr(METHODS[method].SETTINGS, k)}}))
    model = METHODS[cfg.method](cfg).eval()
    copy = pickle.loads(pickle.dumps(model))
    _same_state(model, copy)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    _same_state(model, loaded)
    batch = _batch_with_gray(model.cfg, n=8)
    torch.testing.assert_close(loaded.ssl_step(batch)[0]["loss"], model.ssl_step(batch)[0]["loss"])


def test_ddp_spawn_trains_an_objective_model(tmp_path):
    cfg = tiny_pretrain_cfg("simclr_equimod", tmp_path, **{"strategy": "ddp_spawn", "devices": 2, "limit_train_batches": 2,
                                                           "method_kwargs": {"proj_hidden_dim": 32},
                                                           "objectives": {"equimod": {"proj_hidden_dim": 32,
                                                                                      "param_stats_samples": 200}}})
    ckpt = pretrain(cfg)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["global_step"] == 2 and any(k.startswith("objectives.equimod.") for k in state["state_dict"])
