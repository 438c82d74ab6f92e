"""The run-folder rule (solo_equimod.run.run_dir): an earlier run is never clobbered, `last.ckpt` is
always the newest checkpoint of the run that wrote it, and auto_resume continues only a run that
matches on everything that defines it, data included."""

from __future__ import annotations

import multiprocessing
import warnings
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

import solo_equimod.run.run_dir as run_dir_module
from solo_equimod.config.schema import validate
from solo_equimod.errors import ConfigError
from solo_equimod.methods.base import BaseMethod
from solo_equimod.run.run_dir import RunDirError, RunPlan, claim_run_dir, plan_run
from solo_equimod.run.training import pretrain
from tests.conftest import snapshot, tiny_pretrain_cfg, write_image_folder, write_malicious_checkpoint


def _cfg(tmp_path: Path, name: str = "run", **overrides: Any) -> DictConfig:
    """SimCLR with small heads, one batch an epoch, no validation: a run takes about a second."""
    return tiny_pretrain_cfg("simclr", tmp_path, **{"name": name, "limit_train_batches": 1, "limit_val_batches": 0,
                                                    "data.synthetic_size": 32, "method_kwargs.proj_hidden_dim": 32,
                                                    "method_kwargs.proj_output_dim": 16, **overrides})


def _step(path: Path) -> int:
    return int(torch.load(path, weights_only=True)["global_step"])


def test_rerun_with_the_same_name_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    run = pretrain(_cfg(tmp_path)).parent
    before = snapshot(run)
    assert {"config.yaml", "csv/metrics.csv", "last.ckpt"} <= set(before)
    for overrides in ({}, {"optimizer.lr": 0.01}, {"max_epochs": 2}):  # same run, or another one
        with pytest.raises(RunDirError, match=r"already holds a run.*auto_resume\.enabled=true.*fresh name"):
            pretrain(_cfg(tmp_path, **overrides))
        assert snapshot(run) == before


@pytest.mark.parametrize("name", ["../outside", "a/b", "/tmp/abs", "..", ".", ""])
def test_a_name_cannot_write_outside_checkpoint_dir(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=r"name=.*single folder name inside checkpoint\.dir"):
        pretrain(_cfg(tmp_path, name=name))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # not even checkpoint.dir was created


def test_a_run_killed_after_its_first_epoch_resumes_into_last_ckpt(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The killed session leaves epoch 0's checkpoint; the resumed one must overwrite last.ckpt
    (not write last-v1.ckpt beside it) and return it, and the first session's log survives."""
    cfg = _cfg(tmp_path, max_epochs=3, **{"auto_resume.enabled": True})

    def die_in_epoch_1(self: BaseMethod, batch: Any, batch_idx: int) -> None:
        if self.current_epoch == 1:
            raise RuntimeError("killed")

    with monkeypatch.context() as patch:
        patch.setattr(BaseMethod, "on_train_batch_start", die_in_epoch_1)
        with pytest.raises(RuntimeError, match="killed"):
            pretrain(cfg)
    run = tmp_path / "ckpt" / "run"
    assert _step(run / "last.ckpt") == 1
    first_log = (run / "csv" / "metrics.csv").read_bytes()

    last = pretrain(cfg)
    assert last == run / "last.ckpt" and _step(last) == 3
    assert not list(run.glob("last-v*.ckpt"))
    assert (run / "csv" / "metrics.csv").read_bytes() == first_log
    assert (run / "csv-resumed-epoch=0-step=1" / "metrics.csv").is_file()

    # the same command on the finished run resumes its end: nothing trained, nothing of it rewritten
    finished = snapshot(run)
    assert pretrain(cfg) == last
    assert {k: v for k, v in snapshot(run).items() if k in finished} == finished


def test_step_checkpoints_keep_last_ckpt_the_newest(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, max_epochs=2, limit_train_batches=3, **{"data.synthetic_size": 48,
                                                                "checkpoint.every_n_steps": 1})
    run = pretrain(cfg).parent
    assert _step(run / "last.ckpt") == 6 == max(_step(p) for p in run.rglob("*.ckpt"))
    assert not list(run.rglob("*tmp"))


def _two_datasets(tmp_path: Path) -> tuple[Path, Path, Path]:
    a = write_image_folder(tmp_path / "a", classes=2, per_class=10, seed=0)
    b = write_image_folder(tmp_path / "b", classes=2, per_class=10, seed=1)
    c = write_image_folder(tmp_path / "c", classes=3, per_class=8, seed=2)
    return a, b, c


def test_auto_resume_refuses_a_run_on_other_data(tmp_path: Path) -> None:
    a, b, c = _two_datasets(tmp_path)
    data = {"data.dataset": "custom", "auto_resume.enabled": True}
    run = pretrain(_cfg(tmp_path, **data, **{"data.train_path": str(a)})).parent
    before = snapshot(run)
    for other, keys in ((b, "data.train_path"), (c, "data.train_path, data.num_classes")):
        with pytest.warns(UserWarning, match=f"trained with different {keys}"), \
                pytest.raises(RunDirError, match="checkpoints of another run.*fresh name"):
            pretrain(_cfg(tmp_path, **data, **{"data.train_path": str(other)}))
        assert snapshot(run) == before
    # the same folder spelled relatively is the same data: resumed, not refused
    rel = Path(*([".."] * len(Path.cwd().parts)), *a.parts[1:])
    assert _step(pretrain(_cfg(tmp_path, **data, **{"data.train_path": str(rel)}))) == 1


def test_foreign_and_crafted_checkpoints_are_renamed_aside(tmp_path: Path) -> None:
    pretrain(_cfg(tmp_path, **{"auto_resume.enabled": True}))  # one epoch of this run: epoch=0-step=1.ckpt
    run = tmp_path / "ckpt" / "run"
    foreign = torch.load(run / "last.ckpt", weights_only=True)
    foreign["hyper_parameters"]["cfg"]["data"]["synthetic_size"] = 999
    foreign["global_step"] = 50
    torch.save(foreign, run / "last.ckpt")
    foreign_bytes = (run / "last.ckpt").read_bytes()
    marker = tmp_path / "pwned"
    write_malicious_checkpoint(run / "epoch=9-step=99.ckpt", marker)
    evil_bytes = (run / "epoch=9-step=99.ckpt").read_bytes()
    (run / "epoch=8-step=98.ckpt").write_bytes(b"torn")

    with pytest.raises(RunDirError, match="already holds a run"):  # max_epochs differs: refused first ...
        pretrain(_cfg(tmp_path, max_epochs=2))
    with warnings.catch_warnings(record=True) as caught:  # ... then resumed by the matching run
        warnings.simplefilter("always")
        last = pretrain(_cfg(tmp_path, **{"auto_resume.enabled": True, "max_epochs": 1}))
    messages = " ".join(str(w.message) for w in caught)
    assert "epoch=9-step=99.ckpt: unsafe" in messages and "epoch=8-step=98.ckpt: unreadable" in messages
    assert not marker.exists()
    assert (run / "last.ckpt.skipped-foreign").read_bytes() == foreign_bytes
    assert (run / "epoch=9-step=99.ckpt.skipped-unsafe").read_bytes() == evil_bytes
    assert (run / "epoch=8-step=98.ckpt.skipped-unreadable").read_bytes() == b"torn"
    # last.ckpt is the run's own newest checkpoint again, not the foreign one
    assert last == run / "last.ckpt" and last.read_bytes() == (run / "epoch=0-step=1.ckpt").read_bytes()


def test_auto_resume_without_checkpoints_restarts_or_refuses(tmp_path: Path) -> None:
    """A run that left only its config and log (no checkpointing) restarts from scratch beside its
    log; a folder whose config.yaml is another run's is refused."""
    cfg = _cfg(tmp_path, **{"auto_resume.enabled": True, "checkpoint.enabled": False})
    run = pretrain(cfg)
    before = snapshot(run)
    pretrain(cfg)
    assert (run / "csv-restarted" / "metrics.csv").is_file()
    assert {k: v for k, v in snapshot(run).items() if k in before} == before
    with pytest.raises(RunDirError, match="config.yaml that differs in optimizer"):
        pretrain(_cfg(tmp_path, **{"auto_resume.enabled": True, "checkpoint.enabled": False, "optimizer.lr": 0.01}))


def test_only_global_rank_zero_refuses_or_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DDP and SLURM ranks > 0 start after rank 0 created the folder: they must neither refuse it
    nor write to it."""
    run = tmp_path / "ckpt" / "run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("x: 1\n")
    cfg = validate(_cfg(tmp_path))
    with pytest.raises(RunDirError):
        claim_run_dir(cfg)
    monkeypatch.setattr(run_dir_module.rank_zero_only, "rank", 1)
    assert claim_run_dir(cfg) == run
    cfg.data.num_classes = 10
    assert plan_run(run, cfg) == RunPlan(run)  # a foreign config.yaml: rank 0 refuses, rank 1 does not decide
    fresh = RunPlan(tmp_path / "ckpt" / "other")
    fresh.apply(cfg)
    assert not fresh.run_dir.exists() and (run / "config.yaml").read_text() == "x: 1\n"


def _claim_and_apply(cfg: DictConfig, barrier: Barrier) -> None:
    """A new run's folder steps as `pretrain` takes them (auto_resume off), both processes released
    together before the early check and again between it and the first write: the worst case."""
    barrier.wait()
    run_dir = claim_run_dir(cfg)
    barrier.wait()
    try:
        RunPlan(run_dir).apply(cfg)
    except RunDirError as err:
        assert "already holds a run (config.yaml); nothing was written" in str(err), err
        raise SystemExit(3) from None


def test_two_runs_started_together_with_one_name_one_wins(tmp_path: Path) -> None:
    """Both pass the read-only check; the exclusive config.yaml decides: exactly one run gets the
    folder, the other is refused, and the folder holds the winner's config.yaml only."""
    assert issubclass(RunDirError, ConfigError)
    ctx = multiprocessing.get_context("fork")
    rounds = 30
    for r in range(rounds):
        cfgs = [validate(_cfg(tmp_path / f"round{r}", seed=seed)) for seed in (1, 2)]
        barrier = ctx.Barrier(2, timeout=30)
        procs = [ctx.Process(target=_claim_and_apply, args=(cfg, barrier)) for cfg in cfgs]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(30)
        codes = [proc.exitcode for proc in procs]
        assert sorted(codes) == [0, 3], (r, codes)  # 3: refused with the claim's RunDirError
        run = tmp_path / f"round{r}" / "ckpt" / "run"
        winner = cfgs[codes.index(0)]
        assert snapshot(run) == {"config.yaml": OmegaConf.to_yaml(winner, resolve=True).encode()}, r
