"""Two CPU processes (gloo) reproduce one process on the concatenated batch: same loss, same
gradients, for `simclr_equimod` and `byol_equimod` (EquiMod's Eq. 4 loss, and for SimCLR also the
official-code variant); MoCo-v2's gathered keys and queue, and the CARE loss, as one process; and
the EquiMod parameter statistics come out identical on every rank.

Why the full method with BatchNorm in eval mode: in train mode each process normalises with its
own half-batch statistics, which one process on the whole batch cannot reproduce (and
SyncBatchNorm needs CUDA), so the two runs would differ for a reason unrelated to the gather.
In eval mode every layer acts per sample, so the only cross-sample coupling left is the
contrastive negatives: the SimCLR NT-Xent and the EquiMod loss must gather them from the other
process *with gradients* for the loss (mean over ranks) and the DDP-averaged gradients to equal
the single-process ones. A gather without gradients, or a wrong mask of the same-image columns,
fails this test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import DictConfig
from torch.nn.parallel import DistributedDataParallel

from solo_equimod.config.schema import validate
from solo_equimod.data.batch import Batch
from solo_equimod.data.pretrain import PretrainDataModule
from solo_equimod.methods import METHODS, BaseMethod
from solo_equimod.objectives.compose import pipeline_requests
from solo_equimod.run.speed import apply_speed_settings
from tests.conftest import tiny_pretrain_cfg
from tests.helpers.processes import SSLLoss, free_port, grads

WORLD, PER_RANK = 2, 4
HEADS = {"simclr_equimod": {"proj_hidden_dim": 32}, "byol_equimod": {"proj_hidden_dim": 32, "pred_hidden_dim": 32}}


def _cfg(method: str, variant: str, tmp_path: Path) -> DictConfig:
    return validate(tiny_pretrain_cfg(method, tmp_path, **{"data.num_classes": 10, "method_kwargs": HEADS[method],
                                                           "objectives": {"equimod": {
                                                               "proj_hidden_dim": 32, "param_stats_samples": 200,
                                                               "loss_variant": variant}}}))


def _model(cfg: DictConfig) -> BaseMethod:
    torch.manual_seed(0)
    model = METHODS[cfg.method](cfg)
    equimod = model.objectives["equimod"]
    equimod.param_normalizer.fit(torch.rand(50, equimod.param_layout.dim) * 30)
    return model.eval()  # BatchNorm per sample: see the module docstring


def _batch(param_dim: int, lo: int, hi: int) -> Batch:
    """Rows lo:hi of one fixed batch of WORLD * PER_RANK images."""
    gen = torch.Generator().manual_seed(1)
    n = WORLD * PER_RANK
    views = [torch.randn(n, 3, 32, 32, generator=gen) for _ in range(2)]
    params = [torch.rand(n, param_dim, generator=gen) * 30 for _ in range(2)]
    original = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return {"index": torch.arange(lo, hi), "views": [v[lo:hi] for v in views], "params": [p[lo:hi] for p in params],
            "image_size": torch.full((hi - lo, 2), 32), "original": original[lo:hi],
            "target": torch.zeros(hi - lo, dtype=torch.long), "extras": {}}






def _worker(rank: int, port: int, cfg: DictConfig, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        model = _model(cfg)
        if cfg.compile:  # compiled networks in each process against the eager single process
            apply_speed_settings(model, cfg)
        ddp = DistributedDataParallel(SSLLoss(model), find_unused_parameters=True)
        loss = ddp(_batch(model.objectives["equimod"].param_layout.dim, rank * PER_RANK, (rank + 1) * PER_RANK))
        loss.backward()
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        # parameter statistics from the seeded sampler, whatever each process's own RNG state
        torch.manual_seed(100 + rank)
        fresh = METHODS[cfg.method](cfg)
        fresh.prepare_objectives(PretrainDataModule(cfg, pipeline_requests(cfg)))
        normalizer = fresh.objectives["equimod"].param_normalizer
        stats = torch.cat([normalizer.mean, normalizer.std])
        all_stats = [torch.empty_like(stats) for _ in range(WORLD)]
        dist.all_gather(all_stats, stats)
        if rank == 0:
            torch.save({"loss": mean_loss / WORLD, "grads": grads(model), "stats": all_stats}, out)
    finally:
        dist.destroy_process_group()




@pytest.mark.parametrize(("method", "variant", "compiled"), [("simclr_equimod", "paper", False),
                                                             ("byol_equimod", "paper", False),
                                                             ("simclr_equimod", "official", False),
                                                             ("simclr_equimod", "paper", True)])
def test_two_processes_equal_one_process_on_the_concatenated_batch(method: str, variant: str, compiled: bool,
                                                                   tmp_path: Path) -> None:
    """`compiled`: each process's networks compiled (`compile: true`), against the eager single process."""
    cfg = _cfg(method, variant, tmp_path)
    cfg.compile = compiled
    out = str(tmp_path / "rank0.pt")
    os.environ["OMP_NUM_THREADS"] = "1"
    mp.spawn(_worker, args=(free_port(), cfg, out), nprocs=WORLD, join=True)
    got = torch.load(out, weights_only=False)

    model = _model(cfg)
    loss = model.ssl_step(_batch(model.objectives["equimod"].param_layout.dim, 0, WORLD * PER_RANK))[0]["loss"]
    loss.backward()
    torch.testing.assert_close(got["loss"], loss.detach(), rtol=1e-5, atol=1e-6)
    expected = grads(model)
    assert set(got["grads"]) == set(expected) and expected
    for name, grad in expected.items():
        torch.testing.assert_close(got["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert torch.equal(got["stats"][0], got["stats"][1])


# ----- MoCo-v2's gathered keys and the CARE loss ------------------------------------------------
def _plain_cfg(method: str, tmp_path: Path, **objectives: dict) -> DictConfig:
    return validate(tiny_pretrain_cfg(method, tmp_path, **{"data.num_classes": 10, "objectives": objectives,
                                                           "method_kwargs": {"proj_hidden_dim": 32,
                                                                             **({"queue_size": 32}
                                                                                if method == "mocov2" else {})}}))


def _care_batch(lo: int, hi: int) -> Batch:
    """Rows lo:hi of a fixed batch with CARE's chunked views made beforehand, so that every process
    and the single one see the same transformations (drawing them is tested in test_care.py)."""
    batch = _batch(1, lo, hi)
    gen = torch.Generator().manual_seed(2)
    views = [torch.randint(0, 256, (WORLD * PER_RANK, 3, 32, 32), dtype=torch.uint8, generator=gen)[lo:hi]
             for _ in range(2)]  # uint8 levels, as CARE's `derive` makes them
    return {**batch, "extras": {"care": {"view1": views[0], "view2": views[1]}}}


def _keys_and_loss_worker(rank: int, port: int, cfgs: dict[str, DictConfig], out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        results = {}
        for name, cfg in cfgs.items():
            model = _plain_model(cfg)
            ddp = DistributedDataParallel(SSLLoss(model), find_unused_parameters=True)
            loss = ddp(_care_batch(rank * PER_RANK, (rank + 1) * PER_RANK))
            loss.backward()
            mean_loss = loss.detach().clone()
            dist.all_reduce(mean_loss)
            results[name] = {"loss": mean_loss / WORLD, "grads": grads(model), "state": model.state_dict()}
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def _plain_model(cfg: DictConfig) -> BaseMethod:
    torch.manual_seed(0)
    model = METHODS[cfg.method](cfg).eval()  # BatchNorm per sample: see the module docstring
    if "care" in model.objectives:
        model.objectives["care"].derive = lambda batch: {}  # the views come with the batch
    return model


def test_gathered_keys_and_the_care_loss_equal_one_process(tmp_path: Path) -> None:
    """MoCo-v2 (shuffle-BN on): both processes enqueue the keys of all 8 images in rank order, so the
    queue equals one process's on the concatenated batch, and so do the loss and the gradients.
    SimCLR + CARE: chunks stay within a process (2 chunks of 2 rows each), so 2 x 2 chunks equal one
    process splitting the 8 rows into 4 chunks."""
    cfgs = {"mocov2": _plain_cfg("mocov2", tmp_path), "simclr_care": _plain_cfg("simclr", tmp_path, care={
        "chunks": 2, "weight": 1.0})}
    out = str(tmp_path / "rank0.pt")
    os.environ["OMP_NUM_THREADS"] = "1"
    mp.spawn(_keys_and_loss_worker, args=(free_port(), cfgs, out), nprocs=WORLD, join=True)
    results = torch.load(out, weights_only=False)
    singles = {"mocov2": _plain_cfg("mocov2", tmp_path),
               "simclr_care": _plain_cfg("simclr", tmp_path, care={"chunks": 4, "weight": 1.0})}
    models = {}
    for name, cfg in singles.items():
        got = results[name]
        single = models[name] = _plain_model(cfg)
        loss = single.ssl_step(_care_batch(0, WORLD * PER_RANK))[0]["loss"]
        loss.backward()
        torch.testing.assert_close(got["loss"], loss.detach(), rtol=1e-5, atol=1e-6, msg=name)
        expected = grads(single)
        assert set(got["grads"]) == set(expected) and expected
        for key, grad in expected.items():
            torch.testing.assert_close(got["grads"][key], grad, rtol=1e-4, atol=1e-6, msg=f"{name} {key}")
    queue, state = models["mocov2"].criterion.memory_bank, results["mocov2"]["state"]
    assert int(queue.bank_ptr) == int(state["criterion.memory_bank.bank_ptr"]) == WORLD * PER_RANK
    torch.testing.assert_close(state["criterion.memory_bank.bank"], queue.bank)
