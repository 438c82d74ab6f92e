"""The STL objective against independent references: the aligned pairs share exactly the draws they
should and differ in the rest (the returned parameters re-applied per image by torchvision); each loss
term against a naive loop of the official formulas; the heads' BatchNorm calls; the loss going down on
a fixed batch; a checkpoint reloading exactly; two CPU processes equal to one on the concatenated batch;
the shipped configs' official values and the hypernetwork's size."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from omegaconf import DictConfig
from torch.nn.parallel import DistributedDataParallel

from solo_equimod.augment.per_image_applier import apply_view_params
from solo_equimod.augment.pipeline import OriginalView, normalize, to_uint8_tensor
from solo_equimod.augment.policy import ViewPolicy, layout_for, policies_from_config
from solo_equimod.augment.sampler import sample_views
from solo_equimod.config.preflight import check_pretrain_config
from solo_equimod.config.schema import validate
from solo_equimod.data.batch import Batch
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.data.datasets import build_dataset
from solo_equimod.errors import ConfigError
from solo_equimod.eval.augmentation_views import AugmentationViews, measured_policies
from solo_equimod.eval.encoded_views import EncodedViews
from solo_equimod.eval.equivariance import equivariance_measures, run_equivariance
from solo_equimod.methods import METHODS, BaseMethod
from solo_equimod.objectives.stl import HyperLinear
from solo_equimod.run.checkpoints import load_method, save_method
from solo_equimod.run.training import pretrain
from tests.conftest import tiny_pretrain_cfg
from tests.helpers.configs import compose_config
from tests.helpers.processes import SSLLoss, free_port, grads
from tests.helpers.training import fixed_batch, train_on_fixed_batch

POLICY = "care"  # scripts/pretrain/cifar/augmentations/care.yaml: crop, flip, jitter, gray, blur at 32 px
FIELDS = {"crop": ("crop",), "flip": ("flip",), "jitter": ("jitter", "factors", "order"), "gray": ("gray",),
          "blur": ("blur", "sigma")}


def _cfg(tmp_path: Path, **stl: object) -> DictConfig:
    return tiny_pretrain_cfg("simclr", tmp_path, augmentations=POLICY, **{
        "data.num_classes": 10, "method_kwargs": {"proj_hidden_dim": 32, "temperature": 0.2},
        "objectives": {"stl": {"proj_hidden_dim": 32, "trans_hidden_dim": 16, "trans_dim": 8,
                               "trans_proj_hidden_dim": 16, **stl}}})


def _model(tmp_path: Path, **stl: object) -> BaseMethod:
    torch.manual_seed(0)
    cfg = _cfg(tmp_path, **stl)
    return METHODS[cfg.method](cfg)


def _batch(model: BaseMethod, n: int) -> tuple[Batch, torch.Tensor]:
    """A fixed batch whose original is known uint8 images, as every loader delivers it."""
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    return fixed_batch(model.cfg, n) | {"original": images}, images


# ----- the aligned pairs ------------------------------------------------------------------------------
@pytest.mark.parametrize("shared", [["crop", "jitter", "gray"], ["crop"]])
def test_pairs_share_exactly_the_shared_draws_and_views_reapply_per_image(tmp_path: Path, shared: list[str]) -> None:
    model = _model(tmp_path, shared=shared)
    stl = model.objectives["stl"]
    n = 64
    batch, images = _batch(model, n)
    torch.manual_seed(3)
    made = stl.derive(batch)
    views, params = [v.float() for v in made["views"]], made["params"]
    assert all(v.dtype == torch.uint8 for v in made["views"])  # levels: the batch stage normalises them
    assert len(views) == len(params) == 2 and not torch.equal(params[0], params[1])  # two draws, one per view
    for k, (view, vectors, policy) in enumerate(zip(views, params, stl.policies)):
        rows = [stl.layout.decode(v) for v in vectors]
        for aug, fields in FIELDS.items():
            same_in_pair = [all(getattr(rows[i], f) == getattr(rows[i + 1], f) for f in fields) for i in range(0, n, 2)]
            if aug in shared:
                assert all(same_in_pair), (k, aug)
            else:  # drawn per image: some pair differs (all 32 agreeing by chance: < 0.75 ** 32 ~ 1e-4)
                assert not all(same_in_pair), (k, aug)
        assert len({rows[i].crop for i in range(0, n, 2)}) > n // 4  # pairs do not share a draw with each other
        for i in range(n):  # each view is its image under its own returned parameters, torchvision per image
            diff = (view[i] - apply_view_params(images[i], rows[i], policy).float()).abs()
            assert diff.mean() <= 1 and diff.max() <= 8, (k, i)  # in uint8 levels
        other = apply_view_params(images[0], rows[2], policy).float()  # a negative control
        assert (view[0] - other).abs().mean() > 10


def test_the_sampler_shares_the_named_augmentations_within_groups() -> None:
    """Groups of three share crop and blur (both fields), nothing else; without `shared` a group shares all."""
    policy = ViewPolicy(blur_prob=0.5, solarize_prob=0.5)
    n = 60
    groups = torch.arange(n) // 3
    size = torch.full((n,), 40)
    torch.manual_seed(0)
    got = sample_views(policy, size, size, groups=groups, shared=["crop", "blur"])
    every = sample_views(policy, size, size, groups=groups)
    rows, all_rows = [got.row(i) for i in range(n)], [every.row(i) for i in range(n)]
    for start in range(0, n, 3):
        group = rows[start:start + 3]
        assert len({(r.crop, r.blur, r.sigma) for r in group}) == 1
        assert len(set(all_rows[start:start + 3])) == 1
    for field in ("flip", "jitter", "factors", "gray", "solarize"):
        assert any(len({getattr(r, field) for r in rows[s:s + 3]}) > 1 for s in range(0, n, 3)), field
    with pytest.raises(ValueError, match=r"\['spin'\] unknown"):
        sample_views(policy, size, size, groups=groups, shared=["spin"])


def test_odd_batches_and_unknown_shared_augmentations_are_refused_before_the_run(tmp_path: Path) -> None:
    odd = _cfg(tmp_path)
    odd.optimizer.batch_size = 15
    with pytest.raises(ConfigError, match=r"optimizer.batch_size=15 is odd; STL's aligned pairs need an even number"):
        check_pretrain_config(validate(odd))
    with pytest.raises(ConfigError, match=r"objectives.stl.shared=\['crop', 'spin'\] is invalid"):
        check_pretrain_config(validate(_cfg(tmp_path, shared=["crop", "spin"])))


# ----- the loss terms against naive loops ---------------------------------------------------------------
def _nce_loop(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """model.py info_nce_loss, one row at a time: 2N rows, each against the other 2N - 1, its partner the target."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    n, total = a.shape[0], torch.zeros(())
    for i in range(2 * n):
        others = [j for j in range(2 * n) if j != i]
        logits = torch.stack([z[i] @ z[j] / tau for j in others])
        total = total - torch.log_softmax(logits, 0)[others.index((i + n) % (2 * n))]
    return total / (2 * n)


def _hyper_loop(hyper: HyperLinear, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """W(t_b) = the hypernetwork's output for t_b as a d x d matrix (out, in), applied to y_b, one row at a time."""
    d = y.shape[1]
    return torch.stack([(hyper.hypernet.weight @ t[b]).reshape(d, d) @ y[b] for b in range(y.shape[0])])


def test_each_term_equals_a_naive_loop_of_the_official_formulas(tmp_path: Path) -> None:
    model = _model(tmp_path).eval()  # BatchNorm per sample, so the heads' call batches do not matter here
    stl = model.objectives["stl"]
    n, tau = 8, 0.2
    y1, y2 = torch.randn(n, model.features_dim), torch.randn(n, model.features_dim)
    out = stl(fixed_batch(model.cfg, n), {"views": [y1, y2]})
    with torch.no_grad():
        t12 = [stl.trans_net(torch.cat([y1[i], y2[i]])[None])[0] for i in range(n)]
        t21 = [stl.trans_net(torch.cat([y2[i], y1[i]])[None])[0] for i in range(n)]
        partner = [i + 1 if i % 2 == 0 else i - 1 for i in range(n)]
        pred1 = _hyper_loop(stl.transform, y2, torch.stack([t21[partner[i]] for i in range(n)]))
        pred2 = _hyper_loop(stl.transform, y1, torch.stack([t12[partner[i]] for i in range(n)]))
        proj = stl.equi_projector
        equi = _nce_loop(torch.cat([proj(y1), proj(y2)]), torch.cat([proj(pred1), proj(pred2)]), tau)
        a = torch.stack([t12[i] for i in range(0, n, 2)] + [t21[i] for i in range(0, n, 2)])
        b = torch.stack([t12[i] for i in range(1, n, 2)] + [t21[i] for i in range(1, n, 2)])
        trans = _nce_loop(stl.trans_projector(a), stl.trans_projector(b), tau)
    torch.testing.assert_close(out["equi"], equi, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["trans"], trans, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["loss"], 1.0 * equi + 0.1 * trans, rtol=1e-5, atol=1e-5)
    simclr = model.method_loss([y1, y2], fixed_batch(model.cfg, n))["loss"]
    with torch.no_grad():
        torch.testing.assert_close(simclr, _nce_loop(model.projector(y1), model.projector(y2), tau), rtol=1e-5,
                                   atol=1e-5)


def test_every_head_normalises_each_input_in_a_call_of_its_own(tmp_path: Path) -> None:
    """model.py: g on [y1; y2] and on [y2; y1], P_e on y1, y2, y_pred1, y_pred2 and P_t on A's and B's t, each a
    call of n rows (BatchNorm statistics per call); the inverse head likewise (head_batches=per_view)."""
    model = _model(tmp_path)
    model.cfg.method_kwargs.head_batches = "per_view"
    model.kwargs.head_batches = "per_view"
    stl = model.objectives["stl"]
    calls: dict[str, list[int]] = {}
    for name, module in [("g", stl.trans_net), ("P_e", stl.equi_projector), ("P_t", stl.trans_projector),
                         ("P_i", model.projector), ("backbone", model.backbone)]:
        module.register_forward_hook(lambda mod, args, out, name=name: calls.setdefault(name, []).append(len(args[0])))
    model.ssl_step(_batch(model, 8)[0])
    assert calls == {"backbone": [16], "P_i": [8, 8], "g": [8, 8], "P_e": [8, 8, 8, 8], "P_t": [8, 8]}


def test_loss_goes_down_on_a_fixed_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same images and the same aligned draws every step (the RNG reseeded before each)."""
    model = _model(tmp_path)
    batch, _ = _batch(model, 16)
    step = model.ssl_step

    def seeded(b: Batch):  # type: ignore[no-untyped-def]
        torch.manual_seed(0)
        return step(b)

    monkeypatch.setattr(model, "ssl_step", seeded)
    losses = train_on_fixed_batch(model, batch, steps=15)
    for term in ("loss", "simclr_loss", "stl_loss", "stl_equi", "stl_trans"):
        assert losses[-1][term] < 0.9 * losses[0][term], (term, losses[0][term], losses[-1][term])


def test_trains_through_lightning_and_the_checkpoint_reloads_exactly(tmp_path: Path) -> None:
    ckpt = pretrain(_cfg(tmp_path))
    model = load_method(ckpt)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert any(k.startswith("objectives.stl.transform.hypernet.") for k in state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    again = load_method(ckpt)
    batch, _ = _batch(model, 8)
    losses = []
    for m in (model, again):
        torch.manual_seed(0)
        losses.append(m.ssl_step(batch)[0])
    for term in ("loss", "stl_equi", "stl_trans"):
        torch.testing.assert_close(losses[1][term], losses[0][term])
    header = (ckpt.parent / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_stl_loss", "train_stl_equi", "train_stl_trans", "train_simclr_loss"} <= set(header)


# ----- two processes ------------------------------------------------------------------------------------
WORLD, PER_RANK = 2, 4


def _ddp_model(cfg: DictConfig) -> BaseMethod:
    torch.manual_seed(0)
    model = METHODS[cfg.method](cfg).eval()  # BatchNorm per sample: see tests/run/test_ddp.py
    # views made beforehand (any uint8 images: both runs make the same)
    model.objectives["stl"].derive = lambda batch: {"views": [batch["original"], batch["original"].flip(-1)],
                                                    "params": batch["params"]}
    return model


def _ddp_worker(rank: int, port: int, cfg: DictConfig, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        model = _ddp_model(cfg)
        ddp = DistributedDataParallel(SSLLoss(model), find_unused_parameters=True)
        batch = fixed_batch(cfg, WORLD * PER_RANK)
        rows = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        local = {k: [x[rows] for x in v] if isinstance(v, list) else v[rows] if torch.is_tensor(v) else v
                 for k, v in batch.items()}
        loss = ddp(local)
        loss.backward()
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        if rank == 0:
            torch.save({"loss": mean_loss / WORLD, "grads": grads(model)}, out)
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one_process_on_the_concatenated_batch(tmp_path: Path) -> None:
    """Each process pairs its own rows (0, 1), (2, 3): the pairs of one process on all 8 rows. The official
    index tensors, built for the global batch, would pair rows of another process or run past the local batch."""
    cfg = validate(_cfg(tmp_path))
    out = str(tmp_path / "rank0.pt")
    os.environ["OMP_NUM_THREADS"] = "1"
    mp.spawn(_ddp_worker, args=(free_port(), cfg, out), nprocs=WORLD, join=True)
    got = torch.load(out, weights_only=False)
    model = _ddp_model(cfg)
    loss = model.ssl_step(fixed_batch(cfg, WORLD * PER_RANK))[0]["loss"]
    loss.backward()
    torch.testing.assert_close(got["loss"], loss.detach(), rtol=1e-5, atol=1e-6)
    expected = grads(model)
    assert set(got["grads"]) == set(expected) and any(k.startswith("objectives.stl.transform") for k in expected)
    for name, grad in expected.items():
        torch.testing.assert_close(got["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)


# ----- configs and sizes --------------------------------------------------------------------------------
def test_the_hypernetwork_of_a_resnet18_has_512_squared_times_128_weights() -> None:
    assert sum(p.numel() for p in HyperLinear(512, 128).parameters()) == 512 * 512 * 128 == 33_554_432


@pytest.mark.parametrize("config", ["stl10/simclr_stl", "cifar/simclr_stl"])
def test_shipped_configs_carry_the_official_values(config: str) -> None:
    """jaemyung-u/stl main.py defaults: SGD lr 0.03, momentum 0.9, wd 5e-4, batch 256, 200 epochs, tau 0.2,
    weights 1 / 1 / 0.1, heads 512-128, 128-128, 128-128, fp32; dataset.py's shared crop, jitter, grayscale."""
    cfg = validate(compose_config(config))
    k, stl, opt = cfg.method_kwargs, cfg.objectives.stl, cfg.optimizer
    assert (cfg.method, k.proj_hidden_dim, k.proj_output_dim, k.proj_num_layers, k.proj_bn, k.proj_last_bias,
            k.temperature) == ("simclr", 512, 128, 2, "hidden", False, 0.2)
    assert (stl.weight, stl.equi_weight, stl.trans_weight, stl.temperature) == (1.0, 1.0, 0.1, 0.2)
    assert (stl.proj_hidden_dim, stl.proj_output_dim, stl.trans_hidden_dim, stl.trans_dim, stl.trans_proj_hidden_dim,
            stl.trans_proj_output_dim, list(stl.shared)) == (512, 128, 128, 128, 128, 128, ["crop", "jitter", "gray"])
    assert (opt.name, opt.lr, opt.weight_decay, opt.kwargs.momentum, opt.batch_size) == ("sgd", 0.03, 5e-4, 0.9, 256)
    assert (cfg.scheduler.warmup_epochs, cfg.max_epochs, cfg.precision, cfg.backbone.name) == (0, 200, "32-true",
                                                                                              "resnet18")
    aug = cfg.augmentations[0]
    assert (aug.rrc.crop_min_scale, aug.color_jitter.prob, aug.color_jitter.hue, aug.grayscale.prob,
            aug.gaussian_blur.prob, aug.horizontal_flip.prob) == (0.2, 0.8, 0.1, 0.2, 0.5, 0.5)
    cfg.data.num_classes = 10  # a run reads it from the dataset
    model = METHODS["simclr"](cfg)
    linears = [(m.in_features, m.out_features, m.bias is not None) for m in model.projector.modules()
               if isinstance(m, torch.nn.Linear)]
    assert linears == [(512, 512, False), (512, 128, False)]
    g = [(m.in_features, m.out_features) for m in model.objectives["stl"].trans_net if isinstance(m, torch.nn.Linear)]
    assert g == [(1024, 128), (128, 128)]


# ----- equivariance measures ----------------------------------------------------------------------------
def test_examples_are_the_next_image_under_the_same_parameters(tmp_path: Path) -> None:
    """`with_examples`: each augmentation's example view is the next image under the image's own returned
    parameters (re-applied here by torchvision), and the example original the next image's original."""
    cfg = _cfg(tmp_path)
    policies = policies_from_config(cfg.augmentations)
    layout, info = layout_for(policies), DATASET_INFO["synthetic"]
    base = build_dataset("synthetic", None, "train", synthetic_size=4)
    ds = AugmentationViews(base, measured_policies(policies), layout, list(info.mean), list(info.std), OriginalView(),
                           with_examples=True)
    torch.manual_seed(0)
    item = ds[3]
    nxt = to_uint8_tensor(base[0][0])  # index 3 + 1 wraps to 0
    torch.testing.assert_close(item["example_original"], normalize(nxt, info.mean, info.std))
    for aug, view in item["example_views"].items():
        policy = measured_policies(policies)[aug][3 % len(measured_policies(policies)[aug])]
        ref = normalize(apply_view_params(nxt, layout.decode(item["params"][aug]), policy), info.mean, info.std)
        assert (view - ref).abs().max() <= 1e-4 + 1 / (255 * min(info.std)), aug


def test_measures_predict_from_the_example_as_the_partner_in_training(tmp_path: Path) -> None:
    """zhat'_i = P_e(H(g([h(example); h(example's view)])) h(original)), row by row; Eq. 5 from it by hand."""
    model = _model(tmp_path).eval()
    stl = model.example_predictor
    assert stl is model.objectives["stl"] and model.view_predictor is None
    g = torch.Generator().manual_seed(0)
    h = {k: torch.randn(6, model.features_dim, generator=g) for k in ("orig", "view", "ex_orig", "ex_view")}
    encoded = EncodedViews(h["orig"], {"all": h["view"]}, {"all": torch.zeros(6, 1)}, h["ex_orig"],
                           {"all": h["ex_view"]})
    with torch.no_grad():
        got = equivariance_measures(stl, encoded)["all"]["absolute"]["mean"]
        t = torch.stack([stl.trans_net(torch.cat([h["ex_orig"][i], h["ex_view"][i]])[None])[0] for i in range(6)])
        z_pred = stl.equi_projector(_hyper_loop(stl.transform, h["orig"], t))
        z_view, z_orig = stl.equi_projector(h["view"]), stl.equi_projector(h["orig"])
        expected = (F.cosine_similarity(z_view, z_pred) - F.cosine_similarity(z_view, z_orig)).mean()
    assert got == pytest.approx(float(expected), abs=1e-5)


def test_equivariance_command_on_an_stl_checkpoint(tmp_path: Path) -> None:
    model = _model(tmp_path)
    model.cfg.data.synthetic_size = 8
    ckpt = save_method(model, tmp_path / "stl.ckpt")
    report = run_equivariance({"pretrained_feature_extractor": str(ckpt), "max_images": 8, "num_workers": 0,
                               "batch_size": 4})
    assert set(report["measures"]) == {"crop", "flip", "jitter", "gray", "blur", "all"}
    assert all(r["absolute"]["n"] == 8 for r in report["measures"].values())
