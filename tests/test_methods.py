"""Every registered method: builds from a config, trains through Lightning, learns a fixed batch."""

from __future__ import annotations

import pytest
import torch

from solo_equimod.augment import layout_for, policies_from_config
from solo_equimod.checkpoints import load_method
from solo_equimod.data.datasets import DATASET_INFO
from solo_equimod.methods import METHODS
from solo_equimod.objectives import METHOD_ALIASES
from solo_equimod.training import pretrain
from tests.conftest import tiny_pretrain_cfg

ALL = sorted(set(METHODS) - {"sie", "equicaps"})  # they train on renderings: tests/test_sie.py, test_equicaps.py
# the methods with an invariance loss (each has a `<base>_equimod` alias); `essl` has none: its loss is its objectives'
INVARIANCE = sorted({*METHOD_ALIASES, *(base for base, _ in METHOD_ALIASES.values())})


def test_registry_has_the_baselines_and_their_equimod_names(tmp_path):
    """`<base>_equimod` is the base method's class with objectives.equimod added, not a generated subclass."""
    for base in ("simclr", "byol", "barlow_twins", "vicreg"):
        assert METHODS[f"{base}_equimod"] is METHODS[base]
        cfg = tiny_pretrain_cfg(f"{base}_equimod", tmp_path, **{"data.num_classes": 10})
        model = METHODS[f"{base}_equimod"](cfg)
        assert model.cfg.method == base and list(model.objectives) == ["equimod"]
        assert list(METHODS[base](tiny_pretrain_cfg(base, tmp_path, **{"data.num_classes": 10})).objectives) == []


def fixed_batch(cfg, n=16, levels: bool = True) -> dict:
    """Seeded inputs of every kind; the original as uint8 levels (as loaders deliver it) that normalise to
    about N(0, 1) per channel, like the views and real images (`levels=False`: that N(0, 1) draw itself, an
    original already normalised, for a test that skips the batch stage)."""
    g = torch.Generator().manual_seed(0)
    dim = layout_for(policies_from_config(cfg.augmentations)).dim
    info = DATASET_INFO[cfg.data.dataset]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (info.mean, info.std))
    views = [torch.randn(n, 3, 32, 32, generator=g) for _ in range(2)]
    params = [torch.randn(n, dim, generator=g) for _ in range(2)]
    original = torch.randn(n, 3, 32, 32, generator=g)
    if levels:
        original = ((mean + std * original) * 255).round().clamp(0, 255).to(torch.uint8)
    return {"index": torch.arange(n), "views": views, "params": params, "image_size": torch.full((n, 2), 32),
            "original": original, "target": torch.randint(0, 10, (n,), generator=g), "extras": {}}


def train_on_fixed_batch(model, batch, steps: int = 30) -> list[dict[str, float]]:
    """Every logged term of `steps` Adam steps of `ssl_step` on one batch."""
    opt = torch.optim.Adam([p for m in model.learnable_params for p in m.parameters()], lr=1e-3)
    losses = []
    for _ in range(steps):
        out, _ = model.ssl_step(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        for online, target in getattr(model, "momentum_pairs", []):
            target.load_state_dict(online.state_dict())  # tau = 0: BYOL's target follows the online net
        losses.append({k: float(v) for k, v in out.items()})
    return losses


@pytest.mark.parametrize("method", INVARIANCE)
def test_loss_goes_down_on_a_fixed_batch(method, tmp_path):
    torch.manual_seed(0)
    cfg = tiny_pretrain_cfg(method, tmp_path)
    cfg.data.num_classes = 10
    model = METHODS[method](cfg)
    losses = train_on_fixed_batch(model, fixed_batch(cfg))
    for term in losses[0]:  # the total, the method's own loss and every objective's loss
        assert losses[-1][term] < losses[0][term], term


def test_equimod_uses_the_parameters(tmp_path):
    """The prediction depends on the augmentation parameters and on the original image."""
    cfg = tiny_pretrain_cfg("simclr_equimod", tmp_path)
    cfg.data.num_classes = 10
    model = METHODS["simclr_equimod"](cfg).eval()
    batch = fixed_batch(cfg)
    equimod = model.objectives["equimod"]
    z_o = equimod.embed(model.backbone(model.batch_stage(batch)["original"]))  # the original, normalised
    assert not torch.allclose(equimod.predict(z_o, batch["params"][0]), equimod.predict(z_o, batch["params"][1]))
    z_other = equimod.embed(model.backbone(batch["views"][0]))
    assert not torch.allclose(equimod.predict(z_o, batch["params"][0]), equimod.predict(z_other, batch["params"][0]))


def test_equimod_heads_follow_section_2_3(tmp_path):
    cfg = tiny_pretrain_cfg("byol_equimod", tmp_path, head_width=None)
    cfg.data.num_classes = 10
    module = METHODS["byol_equimod"](cfg).objectives["equimod"]
    linears = [m for m in module.projector.modules() if isinstance(m, torch.nn.Linear)]
    norms = [m for m in module.projector.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    relus = [m for m in module.projector.modules() if isinstance(m, torch.nn.ReLU)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(32, 2048), (2048, 2048), (2048, 128)]
    assert len(norms) == 3 and len(relus) == 2
    encoder = module.param_encoder[0]  # Linear (no bias) + BN, as the official code (README Recipes row 5)
    assert (encoder.in_features, encoder.out_features) == (18, 128)
    pred_linears = [m for m in module.predictor.modules() if isinstance(m, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in pred_linears] == [(256, 128)]


@pytest.mark.parametrize("method", ALL)
def test_trains_through_lightning_and_checkpoint_reloads(method, tmp_path):
    cfg = tiny_pretrain_cfg(method, tmp_path)
    ckpt = pretrain(cfg)
    assert ckpt.name == "last.ckpt" and (ckpt.parent / "config.yaml").is_file()
    model = load_method(ckpt)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    if method.endswith("_equimod"):
        # normalisation statistics were estimated (not the identity) and travel in the checkpoint
        std = model.objectives["equimod"].param_normalizer.std
        assert not torch.allclose(std, torch.ones_like(std))
    if method.startswith("byol"):
        assert (ckpt.parent / "csv" / "metrics.csv").read_text().count("tau") >= 1
