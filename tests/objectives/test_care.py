"""The CARE objective: every image of a chunk got the same pair of transformations (re-applied per
image with torchvision from the returned parameters), one pair per chunk or per step, the rows kept,
the heads, the two views in BatchNorm batches of their own, the loss equal to the old path's (the
loaders' normalised original turned back into uint8 levels, re-implemented naively here), the loss
going down on a fixed batch (SimCLR and MoCo-v2), and a model with CARE pickling with its head bound
to itself."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from solo_equimod.augment.batched_applier import apply_batch
from solo_equimod.augment.per_image_applier import apply_view_params
from solo_equimod.augment.sampler import sample_views
from solo_equimod.config.preflight import check_pretrain_config
from solo_equimod.config.schema import validate
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.errors import ConfigError
from solo_equimod.methods import METHODS, BaseMethod
from tests.conftest import tiny_pretrain_cfg
from tests.helpers.care import CARE_POLICY, care_batch


def _model(tmp_path: Path, method: str = "simclr", **care: object) -> BaseMethod:
    torch.manual_seed(0)
    heads = {} if method == "essl" else {"proj_hidden_dim": 32}  # ESSL has no projector
    queue = {"queue_size": 256} if method == "mocov2" else {}
    cfg = tiny_pretrain_cfg(method, tmp_path, augmentations=CARE_POLICY, head_width=None, **{
        "data.num_classes": 10, "method_kwargs": {**heads, **queue},
        "objectives": {"care": {"chunks": 4, **care}}})
    return METHODS[method](cfg)




@pytest.mark.parametrize("pairs", ["per_chunk", "per_step"])
def test_every_image_of_a_chunk_got_the_same_transformation(tmp_path: Path, pairs: str) -> None:
    model = _model(tmp_path, pairs=pairs)
    care = model.objectives["care"]
    batch, images = care_batch(model, 18)  # chunks of 18 // 4 = 4 images, the last 2 images dropped
    derived = care.derive(batch)["extras"]["care"]
    for key, params in zip(("view1", "view2"), derived["params"]):
        views = derived[key].float()
        assert derived[key].dtype == torch.uint8 and views.shape == (16, 3, 32, 32) and len(params) == 16
        rows = [params.row(i) for i in range(16)]
        first = {int(g): rows[i] for i, g in reversed(list(enumerate(derived["groups"])))}
        assert all(rows[i] == first[int(g)] for i, g in enumerate(derived["groups"]))  # one draw per group
        assert len({rows[0], rows[4], rows[8], rows[12]}) == (4 if pairs == "per_chunk" else 1)
        for i in range(16):  # re-applied per image by torchvision from the returned parameters
            diff = (views[i] - apply_view_params(images[i], rows[i], care.policy).float()).abs()
            assert diff.mean() <= 1 and diff.max() <= 8, (key, i)  # in uint8 levels
        if pairs == "per_chunk":  # a negative control: another chunk's parameters do not reproduce the view
            assert (views[0] - apply_view_params(images[0], rows[4], care.policy).float()).abs().mean() > 10
    assert not torch.equal(derived["view1"], derived["view2"])  # t1 and t2 are two draws


def _naive_care_loss(z1: torch.Tensor, z2: torch.Tensor, chunks: int) -> torch.Tensor:
    """Mean over chunks of 2 * mean over rows of sum_{j != i} (G1[i, j] - G2[i, j])^2, G = Z Z^T, by loops."""
    size = z1.shape[0] // chunks
    per_chunk = []
    for c in range(chunks):
        a, b = z1[c * size:(c + 1) * size], z2[c * size:(c + 1) * size]
        rows = [sum((a[i] @ a[j] - b[i] @ b[j]) ** 2 for j in range(size) if j != i) for i in range(size)]
        per_chunk.append(2 * torch.stack(rows).mean())
    return torch.stack(per_chunk).mean()


@pytest.mark.parametrize("pairs", ["per_chunk", "per_step"])
def test_loss_equals_the_old_round_trip_path(tmp_path: Path, pairs: str) -> None:
    """The batch stage (views from the uint8 original, normalised once) gives the loss of the old path,
    re-implemented here: the loaders normalised the original, CARE turned it back into uint8 levels with
    the dataset's statistics, drew and applied its views and normalised them again."""
    model = _model(tmp_path, pairs=pairs)
    care, info = model.objectives["care"], DATASET_INFO[model.cfg.data.dataset]
    batch, images = care_batch(model, 18)  # chunks of 4 rows, the last 2 rows dropped
    torch.manual_seed(5)
    loss = model.ssl_step(batch)[0]["care_loss"]

    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (info.mean, info.std))
    loader_original = (images.float() / 255 - mean) / std  # what the loaders delivered before
    levels = ((loader_original * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)[:16]  # CARE's round trip
    groups = torch.arange(16) // 4 if pairs == "per_chunk" else torch.zeros(16, dtype=torch.long)
    size = torch.full((16,), 32)
    torch.manual_seed(5)  # the stage is the step's first draw
    drawn = [sample_views(care.policy, size, size, groups=groups) for _ in range(2)]
    views = [(apply_batch(levels, p, care.policy).float() / 255 - mean) / std for p in drawn]
    z1, z2 = (F.normalize(model.projector(model.backbone(v)), dim=1) for v in views)  # each view a batch of its own
    torch.testing.assert_close(loss, _naive_care_loss(z1, z2, 4), rtol=1e-4, atol=1e-6)


def test_images_per_process_and_too_many_chunks(tmp_path: Path) -> None:
    model = _model(tmp_path, chunks=2, images_per_process=8)
    batch, _ = care_batch(model, 16)
    assert model.objectives["care"].derive(batch)["extras"]["care"]["view1"].shape[0] == 8
    cfg = validate(_model(tmp_path, chunks=8, images_per_process=8).cfg)
    with pytest.raises(ConfigError, match=r"objectives.care.chunks=8 splits the 8 images of a process's batch "
                                          r"\(optimizer.batch_size=16, objectives.care.images_per_process=8\) into "
                                          r"chunks of 1; each chunk needs >= 2 images: use objectives.care.chunks <= 4"):
        check_pretrain_config(cfg)


def test_heads_and_batchnorm_batches(tmp_path: Path) -> None:
    """`method`: the method's own projector (the official code's shared g); `own`: CARE's g. The
    views go through the backbone together, each CARE view in a call of its own (official code)."""
    model = _model(tmp_path)
    care, h = model.objectives["care"], torch.randn(6, model.features_dim)
    model.eval()
    torch.testing.assert_close(care.embed(h), F.normalize(model.projector(h), dim=1))
    own = _model(tmp_path, head="own").objectives["care"]
    layers = [(type(m), getattr(m, "bias", None) is not None) for m in own.head.modules()
              if isinstance(m, (nn.Linear, nn.BatchNorm1d, nn.ReLU))]
    assert layers == [(nn.Linear, False), (nn.BatchNorm1d, True), (nn.ReLU, False), (nn.Linear, True)]
    assert (own.head.layers[0].out_features, own.head.layers[-1].out_features) == (512, 128)
    model.train()
    calls: list[int] = []
    model.backbone.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    model.ssl_step(care_batch(model, 16)[0])
    assert calls == [32, 16, 16]


@pytest.mark.parametrize("method", ["simclr", "mocov2"])
def test_loss_goes_down_on_a_fixed_batch(tmp_path: Path, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same images and the same chunk transformations every step (the RNG reseeded), MoCo's queue held."""
    model = _model(tmp_path, method, weight=1.0)
    if method == "mocov2":
        monkeypatch.setattr(model.criterion.memory_bank, "_dequeue_and_enqueue", lambda keys: None)
    batch, _ = care_batch(model, 16)
    opt = torch.optim.Adam([p for m in model.learnable_params for p in m.parameters()], lr=1e-3)
    losses = []
    for _ in range(8):
        torch.manual_seed(0)
        out, _ = model.ssl_step(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append({k: float(v.detach()) for k, v in out.items()})
    assert losses[-1]["loss"] < losses[0]["loss"]
    assert losses[-1]["care_loss"] < 0.7 * losses[0]["care_loss"], (losses[0]["care_loss"], losses[-1]["care_loss"])


def test_head_method_on_a_method_without_a_head_fails_at_construction(tmp_path: Path) -> None:
    """ESSL has no projector: CARE on its head is refused when the model is built, naming the key; its own head works."""
    with pytest.raises(ConfigError, match=r"objectives.care.head='method': method 'essl' has no embedding head"):
        _model(tmp_path, "essl")
    model = _model(tmp_path, "essl", head="own", weight=0.5)
    out, _ = model.ssl_step(care_batch(model, 16)[0])
    assert float(out["care_loss"]) > 0  # ESSL's own loss is 0, so the total is CARE's weighted term alone
    assert float(out["loss"]) == pytest.approx(0.5 * float(out["care_loss"]), rel=1e-6)


def test_a_model_with_care_pickles_with_its_head_bound_to_itself(tmp_path: Path) -> None:
    model = _model(tmp_path).eval()
    copy = pickle.loads(pickle.dumps(model))
    assert copy.objectives["care"].method_embed.__self__ is copy
    h = torch.randn(4, model.features_dim)
    torch.testing.assert_close(copy.objectives["care"].embed(h), model.objectives["care"].embed(h))


def test_care_configs_carry_the_papers_values_and_heads() -> None:
    """Weight / chunks per dataset (CARE's scripts), the CIFAR Adam setting, and the SimCLR heads:
    CARE's g on CIFAR, MoCo-v2's fc head on ImageNet-100 (built on the configs' ResNet-50)."""
    from hydra import compose, initialize_config_dir

    from solo_equimod.config.hydra_schemas import register_schemas
    from solo_equimod.config.schema import validate
    from tests.conftest import REPO

    register_schemas()
    cfgs = {}
    for folder, names in (("cifar", ("simclr_care", "mocov2_care", "simclr_care_cifar100", "mocov2_care_cifar100")),
                          ("stl10", ("simclr_care", "mocov2_care")), ("imagenet-100", ("simclr_care", "mocov2_care"))):
        with initialize_config_dir(str(REPO / "scripts/pretrain" / folder), version_base="1.3"):
            cfgs.update({(folder, n): validate(compose(config_name=n)) for n in names})
    care = {k: (c.objectives.care.weight, c.objectives.care.chunks, c.data.dataset) for k, c in cfgs.items()}
    assert {care[k] for k in care if k[1].endswith("cifar100")} == {(0.001, 4, "cifar100")}
    assert care["cifar", "simclr_care"] == care["cifar", "mocov2_care"] == (0.03, 16, "cifar10")
    assert care["stl10", "simclr_care"] == (0.01, 8, "stl10") and care["imagenet-100", "mocov2_care"][:2] == (0.005, 4)
    cifar, stl, in100 = cfgs["cifar", "simclr_care"], cfgs["stl10", "mocov2_care"], cfgs["imagenet-100", "mocov2_care"]
    assert (cifar.optimizer.name, cifar.optimizer.lr, cifar.optimizer.weight_decay, cifar.scheduler.name,
            cifar.optimizer.batch_size, cifar.max_epochs) == ("adam", 1e-3, 1e-6, "none", 256, 400)
    assert (stl.optimizer.name, stl.optimizer.lr, stl.optimizer.weight_decay, stl.augmentations[0].crop_size) == \
           ("sgd", 0.06, 5e-4, 32)
    assert (in100.optimizer.batch_size * in100.devices * in100.num_nodes, in100.objectives.care.images_per_process,
            in100.method_kwargs.tau_base, in100.method_kwargs.queue_size) == (256, 32, 0.99, 65536)
    heads = {f: METHODS["simclr"](OmegaConf.merge(cfgs[f, "simclr_care"], {"data": {"num_classes": 10}})).projector
             for f in ("cifar", "imagenet-100")}
    shapes = {f: [(type(m).__name__, getattr(m, "out_features", None), getattr(m, "bias", None) is not None)
                  for m in h.layers] for f, h in heads.items()}
    assert shapes["cifar"] == [("Linear", 512, False), ("BatchNorm1d", None, True), ("ReLU", None, False),
                               ("Linear", 128, True)]
    assert shapes["imagenet-100"] == [("Linear", 2048, True), ("ReLU", None, False), ("Linear", 128, True)]
    assert heads["cifar"].layers[0].in_features == 2048
