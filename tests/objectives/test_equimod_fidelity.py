"""Fidelity to the official EquiMod code (README "Recipes"): global batches of the shipped configs,
zero-initialised residual BNs, joint BatchNorm batches in the heads, the heads' layers, the CIFAR
crop, the linear-evaluation view, equivariance views on ImageNet-size data, old configs pinned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.transforms.v2 import functional as TF

from solo_equimod.augment import ViewPolicy, layout_for
from solo_equimod.augment.pipeline import OriginalView
from solo_equimod.backbones import build_backbone
from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.config.saved_configs import pin_saved_config
from solo_equimod.config.schema import validate
from solo_equimod.eval.augmentation_views import AugmentationViews, measured_policies
from solo_equimod.eval.linear_config import LinearConfig
from solo_equimod.eval.linear_transforms import evaluation_view
from solo_equimod.methods import METHODS
from solo_equimod.run.training import global_batch_line
from tests.conftest import REPO, tiny_pretrain_cfg
from tests.helpers.training import fixed_batch

FOLDERS = tuple(sorted(p.name for p in (REPO / "scripts/pretrain").iterdir() if p.is_dir()))


def _cited_global_batch(folder: str, config: str) -> int:
    """The global batch cited by the comment on the `batch_size:` line of the config or of the first
    config it inherits from (its first `defaults` entry)."""
    text = (REPO / "scripts/pretrain" / folder / f"{config}.yaml").read_text()
    line = next((ln for ln in text.splitlines() if ln.strip().startswith("batch_size:")), None)
    if line is not None:
        return int(re.search(r"global (\d+) = ", line).group(1))
    return _cited_global_batch(folder, re.search(r"^defaults:\n  - (\w+)", text, re.M).group(1))


@pytest.mark.parametrize("folder", FOLDERS)
def test_shipped_configs_give_the_global_batch_their_comment_cites(folder: str) -> None:
    register_schemas()
    path = REPO / "scripts/pretrain" / folder
    with initialize_config_dir(str(path), version_base="1.3"):
        for method in sorted(p.stem for p in path.glob("*.yaml") if not p.name.startswith("_")):
            cfg = validate(compose(config_name=method))
            got = cfg.optimizer.batch_size * cfg.devices * cfg.num_nodes
            assert got == _cited_global_batch(folder, method), (folder, method)
            if folder == "imagenet" and method in ("simclr", "byol", "simclr_equimod", "byol_equimod"):
                assert got == 4096  # Sec. 3.1.1-3.1.2 (was 32,768: 4096 per process x 8)
    assert global_batch_line(512, 8, 1).startswith("global batch 4096 = optimizer.batch_size 512 per process")


@pytest.mark.parametrize(("name", "block"), [("resnet18", BasicBlock), ("resnet50", Bottleneck)])
def test_residual_blocks_start_with_a_zero_last_bn(name: str, block: type) -> None:
    net, _ = build_backbone(name, cifar=True)
    blocks = [m for m in net.modules() if isinstance(m, block)]
    last_bns = [b.bn2 if block is BasicBlock else b.bn3 for b in blocks]
    assert blocks and all(torch.count_nonzero(bn.weight) == 0 for bn in last_bns)
    assert torch.count_nonzero(net.bn1.weight) == net.bn1.weight.numel()  # only the residual branches
    plain, _ = build_backbone(name, cifar=True, zero_init_residual=False)  # backbone.kwargs override
    assert all(torch.count_nonzero(m.bn2.weight) > 0 for m in plain.modules() if isinstance(m, BasicBlock))


def _count_calls(module: nn.Module, calls: list[int]) -> None:
    module.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))


@pytest.mark.parametrize("method", ["simclr_equimod", "byol_equimod"])
def test_heads_see_joint_batches_as_the_official_code(method: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = tiny_pretrain_cfg(method, tmp_path, **{"data.num_classes": 10})
    model = METHODS[method](cfg).train()
    eq = model.objectives["equimod"]
    heads = {"g'": eq.projector, "encoder": eq.param_encoder, "u": eq.predictor, "projector": model.projector}
    if method == "byol_equimod":
        heads["byol predictor"] = model.predictor
    calls = {name: [] for name in heads}
    for name, head in heads.items():
        _count_calls(head, calls[name])
    n = 16
    model.ssl_step(fixed_batch(model.cfg, n))
    assert calls == {"g'": [3 * n], "encoder": [2 * n], "u": [2 * n], "projector": [2 * n],
                     **({"byol predictor": [2 * n]} if method == "byol_equimod" else {})}


def test_heads_have_the_official_layers(tmp_path: Path) -> None:
    model = METHODS["simclr_equimod"](tiny_pretrain_cfg("simclr_equimod", tmp_path, **{"data.num_classes": 10}))
    eq = model.objectives["equimod"]
    linear, bn = eq.param_encoder
    assert isinstance(linear, nn.Linear) and linear.bias is None and isinstance(bn, nn.BatchNorm1d) and bn.affine
    for head in (eq.projector, eq.predictor, model.projector):  # the last BN: no affine parameters
        last_bn = [m for m in head.modules() if isinstance(m, nn.BatchNorm1d)][-1]
        assert not last_bn.affine and last_bn.weight is None
        assert all(m.bias is None for m in head.modules() if isinstance(m, nn.Linear))
    paper = METHODS["simclr"](tiny_pretrain_cfg("simclr", tmp_path, **{
        "data.num_classes": 10, "objectives": {"equimod": {"param_encoder": "perceptron", "last_bn_affine": True}},
        "method_kwargs.last_bn_affine": True}))
    assert isinstance(paper.objectives["equimod"].param_encoder, nn.Linear)
    assert paper.objectives["equimod"].param_encoder.bias is not None
    assert [m for m in paper.projector.modules() if isinstance(m, nn.BatchNorm1d)][-1].affine


def test_an_old_saved_config_keeps_the_old_heads() -> None:
    """A config saved before config_version 2 (the recorded reference's, as the first zoo files held) is
    pinned to what it was trained with."""
    saved = torch.load(REPO / "tests/objectives/data/equimod_reference.pt", weights_only=False)["methods"]["simclr_equimod"]
    cfg = saved["cfg"]
    assert "config_version" not in cfg
    pinned = pin_saved_config(cfg)
    assert pinned.objectives.equimod.param_encoder == "perceptron" and pinned.objectives.equimod.last_bn_affine
    assert pinned.method_kwargs.head_batches == "per_view" and pinned.method_kwargs.last_bn_affine
    model = METHODS[pinned.method](pinned)
    model.load_state_dict(saved["init_state"])  # strict: every weight has its place
    current = validate(OmegaConf.create({**cfg, "config_version": 2}))  # the same config written today
    assert current.objectives.equimod.param_encoder == "linear_bn"


def test_cifar_policies_crop_like_the_official_code() -> None:
    for name in ("simclr", "byol", "barlow"):
        entries = OmegaConf.load(REPO / f"scripts/pretrain/cifar/augmentations/{name}.yaml")
        for entry in entries:
            assert entry.rrc.crop_min_scale == 0.2 and entry.rrc.interpolation == "bicubic"


def test_linear_test_view_defaults() -> None:
    cfg = OmegaConf.structured(LinearConfig)
    assert evaluation_view(cfg, crop_size=32) == (36, 32, "bicubic")  # any dataset pretrained on 32 px crops
    assert evaluation_view(cfg, crop_size=224) == (256, 224, "bicubic")
    cfg.test_view.resize = 40
    assert evaluation_view(cfg, crop_size=224) == (40, 224, "bicubic")


def test_views_without_a_random_crop_show_the_originals_region() -> None:
    """ImageNet-size data: 'flip only' is the original's Resize(256) + CenterCrop(224), flipped."""
    gen = torch.Generator().manual_seed(0)
    small = TF.resize((torch.rand(3, 30, 40, generator=gen) * 255).to(torch.uint8), [300, 400], antialias=True)
    policies = [ViewPolicy(crop_size=224, jitter_prob=0.0, gray_prob=0.0)]
    original = OriginalView(resize=256, center_crop=224)
    ds = AugmentationViews([(small, 0)], measured_policies(policies), layout_for(policies), [0.0] * 3, [1.0] * 3,
                           original)
    sample = ds[0]
    flip = layout_for(policies).decode(sample["params"]["flip"])
    # by hand: 300x400 -> 256x341; CenterCrop 224 at (top 16, left 58); in input pixels x 400/341, y 300/256
    assert flip.crop == (68, 19, 263, 262) and flip.flip
    diff = (sample["views"]["flip"] - TF.horizontal_flip(sample["original"])).abs() * 255
    assert diff.mean() < 2.0  # the same region, flipped (only resampling differs)
    squashed = TF.resize(small, [224, 224], antialias=True).float() / 255  # the old view: the whole image
    assert (TF.horizontal_flip(squashed) - TF.horizontal_flip(sample["original"])).abs().mean() * 255 > 5 * diff.mean()
