"""MoCo-v2: the InfoNCE against the queue as written out by hand, the queue a first-in first-out
ring of the last K keys without gradient, the loss going down, EquiMod composing onto it, and the
queue travelling in the checkpoint so that a resumed run starts from the interrupted run's queue."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from solo_equimod.methods import METHODS
from solo_equimod.methods.mocov2 import MoCoV2
from solo_equimod.run.training import pretrain
from tests.conftest import tiny_pretrain_cfg
from tests.helpers.training import fixed_batch, train_on_fixed_batch

HEAD = {"proj_hidden_dim": 32}


def _model(tmp_path: Path, queue_size: int, **objectives: dict) -> MoCoV2:
    torch.manual_seed(0)
    cfg = tiny_pretrain_cfg("mocov2", tmp_path, **{"data.num_classes": 10, "objectives": objectives,
                                                   "method_kwargs": {**HEAD, "queue_size": queue_size}})
    return METHODS["mocov2"](cfg)


def _batch(model: MoCoV2, n: int, seed: int) -> dict:
    torch.manual_seed(seed)
    return fixed_batch(model.cfg, n) | {"views": [torch.randn(n, 3, 32, 32) for _ in range(2)]}


def test_queue_is_a_fifo_of_the_last_k_keys_and_the_loss_is_infonce_against_the_old_queue(tmp_path: Path) -> None:
    n, steps = 8, 4
    model = _model(tmp_path, queue_size=3 * n)
    queue = model.criterion.memory_bank
    assert queue.bank.shape == (3 * n, 128) and not queue.bank.requires_grad
    all_keys = []
    for step in range(steps):
        batch = _batch(model, n, seed=step)
        before = queue.bank.clone()
        loss = model.ssl_step(batch)[0]["loss"]
        model.zero_grad()
        loss.backward()
        # a reference written out: queries of view 1, keys of view 2 by the momentum encoder, MoCo's logits
        with torch.no_grad():
            keys = F.normalize(model.momentum_projector(model.momentum_backbone(batch["views"][1])), dim=1)
            h = model.backbone(torch.cat(batch["views"]))[:n]  # both views in one BatchNorm batch, as encode_batch
            q = F.normalize(model.projector(h), dim=1)
            logits = torch.cat([(q * keys).sum(1, keepdim=True), q @ before.T], dim=1) / 0.2
            torch.testing.assert_close(loss.detach(), F.cross_entropy(logits, torch.zeros(n, dtype=torch.long)))
        all_keys.append(keys)
        assert all(p.grad is None for p in [*model.momentum_backbone.parameters(),
                                            *model.momentum_projector.parameters()])  # keys carry no gradient
    # K = 3n: the fourth batch of keys replaced the first (the oldest), the other two are in place
    torch.testing.assert_close(queue.bank, torch.cat([all_keys[3], all_keys[1], all_keys[2]]))
    assert int(queue.bank_ptr) == n and not queue.bank.requires_grad


def test_loss_goes_down_on_a_fixed_batch_also_with_equimod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the queue held fixed: on one repeated batch it would fill with the batch's own keys, each
    then a negative of its own query."""
    model = _model(tmp_path, queue_size=256, equimod={"proj_hidden_dim": 32, "param_stats_samples": 200})
    monkeypatch.setattr(model.criterion.memory_bank, "_dequeue_and_enqueue", lambda keys: None)
    losses = train_on_fixed_batch(model, fixed_batch(model.cfg), steps=15)
    for term in ("loss", "mocov2_loss", "equimod_loss"):
        assert losses[-1][term] < losses[0][term], term


def test_resumed_run_starts_from_the_interrupted_runs_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The uninterrupted run records the queue before every step; a run stopped after step `stop_at`
    and resumed with `auto_resume` starts with exactly that queue and pointer (the checkpoint carries
    them). Later steps cannot be compared: these loaders restart an interrupted epoch's data."""
    stop_at = 4  # epoch 1, batch 1 of 3
    seen: dict[str, list[tuple[int, torch.Tensor, int]]] = {"ref": [], "stopped": [], "resumed": []}
    run = {"name": "ref"}

    def record(self: MoCoV2, batch: object, batch_idx: int) -> None:
        queue = self.criterion.memory_bank
        seen[run["name"]].append((self.trainer.global_step, queue.bank.clone(), int(queue.bank_ptr)))
        if run["name"] == "stopped" and self.trainer.global_step == stop_at:
            raise RuntimeError("stopped on purpose")

    monkeypatch.setattr(MoCoV2, "on_train_batch_start", record, raising=False)

    def cfg(name: str):
        return tiny_pretrain_cfg("mocov2", tmp_path, name=name, max_epochs=2, limit_train_batches=None, **{
            "data.synthetic_size": 48, "checkpoint.every_n_steps": 1, "checkpoint.keep_steps": 2,
            "auto_resume.enabled": True, "method_kwargs": {**HEAD, "queue_size": 64}})

    pretrain(cfg("ref"))
    run["name"] = "stopped"
    with pytest.raises(RuntimeError, match="stopped on purpose"):
        pretrain(cfg("run"))
    run["name"] = "resumed"
    last = pretrain(cfg("run"))
    step, bank, ptr = seen["resumed"][0]
    ref_step, ref_bank, ref_ptr = next(r for r in seen["ref"] if r[0] == stop_at)
    assert step == ref_step == stop_at and ptr == ref_ptr == (stop_at * 16) % 64
    assert torch.equal(bank, ref_bank)
    assert not torch.equal(bank, seen["ref"][0][1])  # not the fresh random queue
    assert torch.load(last, weights_only=True)["global_step"] == 6
