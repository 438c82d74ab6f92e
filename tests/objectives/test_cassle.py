"""CASSLE: the per-view descriptor against hand-computed values, the colour shift across jitter on
known images (per image and batched), the conditioned projector's input against a naive
concatenation, training, checkpoints and the refusals before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.transforms.v2 import functional as F

from solo_equimod.augment import AugmentationLayout, ParamPretrainTransform, ViewParams, policies_from_config
from solo_equimod.augment.batched_applier import apply_batch, apply_batch_and_shift
from solo_equimod.augment.params import BatchViewParams
from solo_equimod.augment.per_image_applier import apply_view_params, apply_view_params_and_shift
from solo_equimod.augment.policy import layout_for
from solo_equimod.cli import config_errors_exit
from solo_equimod.methods import METHODS
from solo_equimod.objectives.cassle import ConditionedHead
from solo_equimod.run.checkpoints import load_method
from solo_equimod.run.training import pretrain
from tests.conftest import tiny_pretrain_cfg, write_image_folder
from tests.helpers.training import train_on_fixed_batch

# one view's policy with every augmentation CASSLE describes: jitter ranges of width 0.8 (b, c, s) and 0.2 (hue)
POLICY_ENTRY = {"rrc": {"enabled": True}, "crop_size": 8, "num_crops": 2, "horizontal_flip": {"prob": 0.5},
                "color_jitter": {"prob": 0.8, "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
                "grayscale": {"prob": 0.2}, "gaussian_blur": {"prob": 0.5, "kernel_size": 3}}
PROJECTED = ("simclr", "byol", "mocov2", "barlow_twins", "vicreg")


def _cfg(method: str, tmp_path: Path, **overrides):
    extra = {"method_kwargs.queue_size": 64} if method == "mocov2" else {}
    cfg = tiny_pretrain_cfg(method, tmp_path, **{"objectives.cassle": {}, **extra, **overrides})
    cfg.augmentations = [POLICY_ENTRY]
    cfg.data.num_classes = 10
    return cfg


def _views() -> list[ViewParams]:
    """Hand-built views of a 40 x 50 (H x W) image: everything applied and flipped; nothing applied; flip only."""
    return [ViewParams(crop=(10, 4, 20, 16), flip=True, jitter=True, factors=(1.2, 0.7, 1.0, -0.05), order=(3, 1, 0, 2),
                       gray=True, blur=True, sigma=1.5),
            ViewParams(crop=(0, 0, 50, 40)),
            ViewParams(crop=(5, 20, 10, 20), flip=True)]


# the descriptors of `_views()` by hand, in the official order blur | color | color_diff | crop | grayscale,
# with colour shifts (0.1, -0.2, 0.3), 0, 0: crop centre y = (top + h / 2) / H, centre x = (left + w / 2) / W,
# mirrored to 1 - x when flipped; colour (factor - 1) / 0.8 and hue / 0.2
HAND = [[1.5, 0.25, -0.375, 0.0, -0.25, 0.1, -0.2, 0.3, 0.3, 1 - 0.4, 0.4, 0.4, 1.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.75, 1 - 0.2, 0.5, 0.2, 0.0]]


def _batch_of(views: list[ViewParams], layout: AugmentationLayout, shifts: torch.Tensor) -> dict:
    params = torch.stack([layout.encode_tensor(v) for v in views])
    return {"params": [params, params], "color_shift": [shifts, shifts],
            "image_size": torch.tensor([[40, 50]] * len(views))}


def test_descriptor_of_hand_built_views(tmp_path):
    model = METHODS["simclr"](_cfg("simclr", tmp_path, **{"objectives.cassle.conditions": ["crop", "color", "color_diff",
                                                                                           "blur", "grayscale"]}))
    cassle = model.objectives["cassle"]
    shifts = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    batch = _batch_of(_views(), cassle.layout, shifts)
    assert cassle.descriptor_dim == 13
    torch.testing.assert_close(cassle.descriptor(batch, 0), torch.tensor(HAND))
    torch.testing.assert_close(cassle.descriptor(batch, 1), torch.tensor(HAND))


def test_descriptor_parts_follow_the_alphabet_and_the_flip_part(tmp_path):
    """Given as [flip, crop], the parts come out as crop | flip (trainers_cond.py sorts them)."""
    model = METHODS["simclr"](_cfg("simclr", tmp_path, **{"objectives.cassle.conditions": ["flip", "crop"]}))
    cassle = model.objectives["cassle"]
    batch = _batch_of(_views(), cassle.layout, torch.zeros(3, 3))
    expected = torch.tensor([row[8:12] + [flag] for row, flag in zip(HAND, (1.0, 0.0, 1.0))])
    torch.testing.assert_close(cassle.descriptor(batch, 0), expected)


def _image() -> torch.Tensor:
    """A known 40 x 50 uint8 image: left half constant (200, 120, 40), right half a seeded random pattern."""
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, 40, 50), generator=g, dtype=torch.uint8)
    image[:, :, :25] = torch.tensor([200, 120, 40], dtype=torch.uint8)[:, None, None]
    return image


def test_color_shift_of_a_constant_image_by_hand():
    """Brightness 0.5 alone on a constant (200, 120, 40) crop: uint8 levels (100, 60, 20), so the shift is
    (100, 60, 20) / 255 per channel; without jitter it is 0."""
    policy = policies_from_config([{**POLICY_ENTRY, "color_jitter": {"prob": 0.8, "brightness": 0.4, "contrast": 0.0,
                                                                            "saturation": 0.0, "hue": 0.0}}])[0]
    view = ViewParams(crop=(0, 0, 20, 40), jitter=True, factors=(0.5, 1.0, 1.0, 0.0))
    expected = torch.tensor([100.0, 60.0, 20.0]) / 255
    _, shift = apply_view_params_and_shift(_image(), view, policy)
    torch.testing.assert_close(shift, expected)
    torch.testing.assert_close(apply_view_params_and_shift(_image(), ViewParams(crop=(0, 0, 20, 40)), policy)[1],
                               torch.zeros(3))
    rows = BatchViewParams(crop=torch.tensor([[0, 0, 20, 40], [0, 0, 20, 40]]), flip=torch.tensor([False, True]),
                           jitter=torch.tensor([True, False]), factors=torch.tensor([[0.5, 1.0, 1.0, 0.0]] * 2),
                           order=torch.tensor([[0, 1, 2, 3]] * 2), gray=torch.tensor([False, True]),
                           blur=torch.tensor([False, False]), sigma=torch.zeros(2), solarize=torch.tensor([False] * 2))
    _, shifts = apply_batch_and_shift(_image()[None].expand(2, -1, -1, -1).contiguous(), rows, policy)
    torch.testing.assert_close(shifts, torch.stack([expected, torch.zeros(3)]))


def test_color_shift_equals_torchvision_means_around_the_jitter():
    """Every operation in a chosen order on the half-random image: the shift is the channels' means of
    torchvision's resized crop minus those after its four adjust_* calls, / 255; the batched applier
    agrees, and neither changes the view itself."""
    policy = policies_from_config([POLICY_ENTRY])[0]
    view = _views()[0]
    crop = F.horizontal_flip(F.resized_crop(_image(), 4, 10, 16, 20, [8, 8], antialias=True))
    # order 3, 1, 0, 2: hue, contrast, brightness, saturation
    jittered = F.adjust_saturation(F.adjust_brightness(F.adjust_contrast(F.adjust_hue(crop, -0.05), 0.7), 1.2), 1.0)
    expected = (crop.float().mean(dim=(1, 2)) - jittered.float().mean(dim=(1, 2))) / 255
    made, shift = apply_view_params_and_shift(_image(), view, policy)
    torch.testing.assert_close(shift, expected)
    assert torch.equal(made, apply_view_params(_image(), view, policy))
    rows = BatchViewParams(crop=torch.tensor([view.crop]), flip=torch.tensor([True]), jitter=torch.tensor([True]),
                           factors=torch.tensor([view.factors]), order=torch.tensor([view.order]),
                           gray=torch.tensor([True]), blur=torch.tensor([True]), sigma=torch.tensor([1.5]),
                           solarize=torch.tensor([False]))
    views, shifts = apply_batch_and_shift(_image()[None], rows, policy)
    torch.testing.assert_close(shifts[0], expected, atol=1 / 255 / 64, rtol=0)  # a level off in at most one pixel
    assert torch.equal(views, apply_batch(_image()[None], rows, policy))


def test_the_pipeline_reports_the_shift_of_the_parameters_it_returns():
    """Re-apply each returned parameter vector to the image: the same shift comes back."""
    policies = policies_from_config([POLICY_ENTRY])
    layout = layout_for(policies)
    transform = ParamPretrainTransform(policies, (0.5,) * 3, (0.5,) * 3, with_color_shift=True)
    torch.manual_seed(3)
    for _ in range(4):
        sample = transform(_image())
        for params, shift, policy in zip(sample["params"], sample["color_shift"], policies):
            torch.testing.assert_close(shift, apply_view_params_and_shift(_image(), layout.decode(params), policy)[1])


def _training_batch(cfg, n: int = 16) -> dict:
    """A fixed batch with valid raw parameters (drawn by the sampler) and colour shifts."""
    policies = policies_from_config(cfg.augmentations)
    transform = ParamPretrainTransform(policies, (0.5,) * 3, (0.25,) * 3, with_color_shift=True)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    samples = [transform(torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)) for _ in range(n)]
    stack = lambda key: [torch.stack([s[key][k] for s in samples]) for k in range(2)]  # noqa: E731
    return {"index": torch.arange(n), "views": stack("views"), "params": stack("params"),
            "color_shift": stack("color_shift"), "image_size": torch.full((n, 2), 32),
            "target": torch.randint(0, 10, (n,), generator=g), "extras": {}}


def _naive_descriptor(batch: dict, view: int, layout: AugmentationLayout) -> torch.Tensor:
    """The paper's 13 numbers of every row, one `ViewParams` at a time (jitter ranges 0.8, hue 0.2)."""
    rows = []
    for params, shift in zip(batch["params"][view], batch["color_shift"][view]):
        p = layout.decode(params)
        x, y, w, h = p.crop
        cx = (x + w / 2) / 32
        color = [(f - 1) / 0.8 for f in p.factors[:3]] + [p.factors[3] / 0.2] if p.jitter else [0.0] * 4
        rows.append([p.sigma if p.blur else 0.0, *color, *shift.tolist(), (y + h / 2) / 32,
                     1 - cx if p.flip else cx, h / 32, w / 32, float(p.gray)])
    return torch.tensor(rows)


@pytest.mark.parametrize("method", ["simclr", "mocov2", "byol"])
def test_conditioned_projector_reads_a_naive_concatenation(method, tmp_path):
    """The first layer of the method's head (and of its momentum copy) reads [h ; e(d)], with h the
    backbone's features of the view, e the head's descriptor encoder and d the descriptor by hand."""
    model = METHODS[method](_cfg(method, tmp_path))
    batch = _training_batch(model.cfg)
    layout = model.objectives["cassle"].layout
    heads = {"projector": model.projector, "momentum_projector": getattr(model, "momentum_projector", None)}
    seen: dict[str, list[torch.Tensor]] = {}
    for name, head in heads.items():
        if head is not None:
            assert isinstance(head, ConditionedHead)
            head.head.register_forward_pre_hook(lambda _, args, name=name: seen.setdefault(name, []).append(args[0]))
    model.ssl_step(batch)
    with torch.no_grad():  # the backbones as the step runs them: the views in one call (shared BatchNorm statistics)
        online = model.backbone(torch.cat(batch["views"])).chunk(2)
        if method == "mocov2":  # queries from view 0, keys from view 1 alone (MoCo's one direction)
            expected = {"projector": ([online[0]], [0]),
                        "momentum_projector": ([model.momentum_backbone(batch["views"][1])], [1])}
        else:
            expected = {"projector": (list(online), [0, 1])}
            if method == "byol":
                expected["momentum_projector"] = (list(model.momentum_backbone(torch.cat(batch["views"])).chunk(2)),
                                                  [0, 1])
        assert set(seen) == set(expected)
        for name, (feats, views) in expected.items():
            d = torch.cat([_naive_descriptor(batch, k, layout) for k in views])
            naive = torch.cat([torch.cat(feats), heads[name].encoder(d)], dim=1)
            torch.testing.assert_close(torch.cat(seen[name]), naive, rtol=1e-4, atol=1e-5)


def test_descriptor_encoder_is_the_official_mlp(tmp_path):
    """load_mlp(13, 64, 64, num_layers=6): five Linear (no bias) - BN - ReLU, then Linear (no bias) - BN (affine)."""
    model = METHODS["simclr"](_cfg("simclr", tmp_path, **{"objectives.cassle.encoder_width": 64}))
    layers = list(model.projector.encoder.modules())
    linears = [m for m in layers if isinstance(m, torch.nn.Linear)]
    norms = [m for m in layers if isinstance(m, torch.nn.BatchNorm1d)]
    assert [(m.in_features, m.out_features, m.bias is None) for m in linears] == [(13, 64, True)] + [(64, 64, True)] * 5
    assert len(norms) == 6 and all(m.affine for m in norms)
    assert sum(isinstance(m, torch.nn.ReLU) for m in layers) == 5
    first = next(m for m in model.projector.head.modules() if isinstance(m, torch.nn.Linear))
    assert first.in_features == model.features_dim + 64


@pytest.mark.parametrize("method", PROJECTED)
def test_loss_goes_down_on_a_fixed_batch(method, tmp_path):
    torch.manual_seed(0)
    model = METHODS[method](_cfg(method, tmp_path, **{"method_kwargs.proj_output_dim": 32}))
    # MoCo's loss first rises while its queue (64 keys) fills with negatives, as without CASSLE
    losses = train_on_fixed_batch(model, _training_batch(model.cfg), steps=30 if method == "mocov2" else 15)
    assert set(losses[0]) == {"loss", f"{method}_loss"}  # CASSLE adds no loss term
    assert losses[-1]["loss"] < losses[0]["loss"]


def test_composes_with_equimod(tmp_path):
    """simclr + cassle + equimod: EquiMod's loss is added, the projector is conditioned, both go down."""
    torch.manual_seed(0)
    model = METHODS["simclr"](_cfg("simclr", tmp_path, **{"objectives.equimod.weight": 1.0}))
    batch = _training_batch(model.cfg)
    batch["original"] = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    losses = train_on_fixed_batch(model, batch, steps=15)
    assert isinstance(model.projector, ConditionedHead)
    for term in ("loss", "simclr_loss", "equimod_loss"):
        assert losses[-1][term] < losses[0][term], term


@pytest.mark.parametrize("data_format", ["image_folder", "tensor"])
def test_trains_through_lightning_and_the_checkpoint_reloads_exactly(data_format, tmp_path):
    """BYOL + CASSLE: the target's conditioned head (its own descriptor encoder) travels in the checkpoint."""
    cfg = _cfg("byol", tmp_path, **{"data.format": data_format})
    ckpt = pretrain(cfg)
    model = load_method(ckpt)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert any(key.startswith("momentum_projector.encoder.") for key in state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    online, target = model.projector.encoder, model.momentum_projector.encoder
    assert not all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters()))  # EMA, not a tie


def _stopped(cfg, capsys) -> str:
    with pytest.raises(SystemExit) as stop, config_errors_exit():
        pretrain(cfg)
    assert stop.value.code == 2
    return capsys.readouterr().err.strip()


def test_dali_is_refused_before_anything_is_written(tmp_path, capsys):
    folder = write_image_folder(tmp_path / "data", classes=2, per_class=8)
    cfg = _cfg("simclr", tmp_path, **{"data.dataset": "custom", "data.train_path": str(folder), "data.format": "dali"})
    err = _stopped(cfg, capsys)
    assert "objectives cassle need color_shift, which data.format='dali' cannot make" in err
    assert "use data.format=image_folder" in err
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize(("method", "overrides", "message"), [
    ("essl", {}, "method='essl' has no projector that can be conditioned on the views' parameters; use one of: "
                 "barlow_twins, byol, mocov2, simclr, vicreg"),
    ("simclr", {"objectives.cassle.conditions": ["crop", "rotation"]}, "objectives.cassle.conditions=['crop', "
                                                                       "'rotation'] is invalid"),
    ("simclr", {"objectives.cassle.encoder": "hypernetwork"}, "objectives.cassle.encoder='hypernetwork' is invalid: "
                                                              "must be one of: mlp, raw"),
])
def test_bad_settings_are_refused_before_anything_is_written(method, overrides, message, tmp_path, capsys):
    assert message in _stopped(_cfg(method, tmp_path, **overrides), capsys)
    assert not (tmp_path / "ckpt").exists()


def test_equivariance_measures_refuse_and_name_the_ones_that_apply(tmp_path):
    """CASSLE's head predicts no view's embedding from another's, so Eq. 5 / 6 do not apply; the
    backbone-only measures (sensitivity, kNN, linear) do, and the message says so."""
    from solo_equimod.errors import ConfigError
    from solo_equimod.eval.equivariance import require_view_predictor

    model = METHODS["simclr"](_cfg("simclr", tmp_path))
    with pytest.raises(ConfigError, match=r"trained with simclr, cassle, which has no objective with an embedding "
                                          r"head and a predictor of views.*solo_equimod.eval sensitivity"):
        require_view_predictor(model, "last.ckpt")
