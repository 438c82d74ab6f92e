"""Crash-safe training on CPU with a tiny model: SIGKILL mid-epoch then auto-resume, a non-finite
loss stop, seeded determinism, and auto_resume's choice among good, truncated and foreign files."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from solo_equimod.config.schema import validate
from solo_equimod.methods.simclr import SimCLR
from solo_equimod.run.callbacks import AtomicCheckpointIO
from solo_equimod.run.checkpoints import scan_checkpoints
from solo_equimod.run.run_dir import RunDirError
from solo_equimod.run.training import pretrain
from tests.conftest import snapshot, tiny_pretrain_cfg
from tests.helpers.runs import kill_after_step4, metric_rows, resume_cfg, run_in_subprocess


def _complete(cfg: DictConfig) -> DictConfig:
    """The config as `pretrain` compares it: validated, `data.num_classes` filled from the data."""
    return validate(OmegaConf.merge(cfg, {"data": {"num_classes": 10}}))








def test_sigkill_mid_epoch_then_auto_resume_matches_an_unkilled_run(tmp_path: Path) -> None:
    """Killed right after the step-4 checkpoint (epoch 1, batch 1), the same command resumes at
    step 4 and finishes with the unkilled run's epoch and step counts, learning-rate schedule
    and BYOL tau at every step. (Lightning restarts a non-resumable dataloader from the start
    of the epoch but counts the batches already done, so weights differ, counts do not.)"""
    pretrain(resume_cfg(tmp_path, "ref"))
    ref_dir = tmp_path / "ckpt" / "ref"

    cfg = resume_cfg(tmp_path, "killed")
    cfg_file, run_dir, step4 = kill_after_step4(tmp_path, cfg)
    assert not (run_dir / "epoch=1-step=6.ckpt").exists()
    assert scan_checkpoints(run_dir, _complete(cfg))[0] == step4

    resumed = run_in_subprocess(cfg_file, delay=0.0)
    err = resumed.communicate(timeout=180)[1].decode()
    assert resumed.returncode == 0, err[-3000:]
    assert f"Restored all states from the checkpoint at {step4}" in err

    final, ref = (torch.load(d / "last.ckpt", weights_only=False) for d in (run_dir, ref_dir))
    assert (final["epoch"], final["global_step"]) == (ref["epoch"], ref["global_step"]) == (1, 6)
    assert final["lr_schedulers"] == ref["lr_schedulers"]
    assert [g["lr"] for g in final["optimizer_states"][0]["param_groups"]] == \
           [g["lr"] for g in ref["optimizer_states"][0]["param_groups"]]
    rows, ref_rows = metric_rows(run_dir, "csv-resumed-epoch=1-step=4"), metric_rows(ref_dir)
    # rows are labelled with the global step at the batch's start: the first resumed batch is step 4
    assert min(s for s, r in rows.items() if "train_loss" in r) == 4
    for key in ("lr-LARS/decay", "tau"):
        steps = [s for s in rows if key in rows[s]]
        assert steps and all(rows[s][key] == ref_rows[s][key] for s in steps), key


def test_non_finite_loss_stops_with_step_and_terms_and_keeps_checkpoint(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    original = SimCLR.method_loss

    def poisoned(self: SimCLR, view_feats: list[torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
        out = original(self, view_feats, batch)
        return {"loss": out["loss"] * float("nan")} if self.trainer.global_step == 2 else out

    monkeypatch.setattr(SimCLR, "method_loss", poisoned)
    cfg = resume_cfg(tmp_path, "nan", method="simclr_equimod")
    with pytest.raises(FloatingPointError, match=r"optimiser step 3 .*train_loss=nan.*train_simclr_loss=nan") as err:
        pretrain(cfg)
    run_dir = tmp_path / "ckpt" / "nan"
    # a one-step NaN leaves healthy weights behind: the message says so and offers the resume
    assert re.search(r"newest checkpoint, \S+last\.ckpt \(step 2\), holds finite parameters.*run the same command "
                     r"with auto_resume\.enabled=true", str(err.value)), err.value
    assert sorted(p.name for p in (run_dir / "steps").iterdir()) == ["epoch=0-step=1.ckpt", "epoch=0-step=2.ckpt"]
    good = torch.load(run_dir / "steps" / "epoch=0-step=2.ckpt", weights_only=False)
    assert good["global_step"] == 2 and all(torch.isfinite(v).all() for v in good["state_dict"].values()
                                            if v.is_floating_point())
    # last.ckpt is the newest good checkpoint, the step-2 file itself
    assert (run_dir / "last.ckpt").read_bytes() == (run_dir / "steps" / "epoch=0-step=2.ckpt").read_bytes()

    # the advice works as written: another lr under the same name is refused, nothing touched ...
    before = snapshot(run_dir)
    with pytest.raises(RunDirError, match=r"fresh name"):
        pretrain(resume_cfg(tmp_path, "nan", method="simclr_equimod", **{"optimizer.lr": 0.1}))
    assert snapshot(run_dir) == before
    # ... and the same command with auto_resume continues from step 2 to the end
    monkeypatch.setattr(SimCLR, "method_loss", original)
    last = pretrain(cfg)
    assert torch.load(last, weights_only=True)["global_step"] == 6
    assert metric_rows(run_dir, "csv-resumed-epoch=0-step=2")
    assert (run_dir / "csv" / "metrics.csv").read_bytes() == before["csv/metrics.csv"]


def test_a_diverged_run_stops_with_advice_that_works_as_written(tmp_path: Path) -> None:
    """optimizer.lr=1e30: the first step blows the weights up to ~1e29, the second one's loss is nan.
    The step-1 checkpoint is finite but diverged, so the stop must not offer to resume from it; the
    new run it proposes (its exact name= and optimizer.lr=) trains to the end."""
    cfg = tiny_pretrain_cfg("simclr", tmp_path, name="huge", max_epochs=2, limit_train_batches=None,
                            limit_val_batches=0, **{"data.synthetic_size": 48, "checkpoint.every_n_steps": 1,
                                                    "optimizer.lr": 1e30, "method_kwargs.proj_hidden_dim": 32,
                                                    "method_kwargs.proj_output_dim": 16})
    with pytest.raises(FloatingPointError, match=r"non-finite loss nan in optimiser step 2 ") as err:
        pretrain(cfg)
    message = str(err.value)
    run_dir = tmp_path / "ckpt" / "huge"
    kept = torch.load(run_dir / "last.ckpt", weights_only=True)
    peak = max(float(v.abs().max()) for k, v in kept["state_dict"].items() if v.is_floating_point()
               and not k.endswith(("running_mean", "running_var")))
    assert kept["global_step"] == 1 and 1e25 < peak < float("inf")
    assert re.search(rf"newest checkpoint, \S+last\.ckpt \(step 1\), already holds diverged weights \(the "
                     rf"largest \|parameter\| {re.escape(f'{peak:.3g}')}, beyond 100x", message), message
    assert "largest |parameter| is now nan" in message
    assert "auto_resume.enabled=true" not in message  # no resume is offered from diverged weights
    advised = re.search(r"the same command with name=(\S+) optimizer\.lr=(\S+) in place of its name and "
                        r"optimizer\.lr", message)
    assert advised and advised.groups() == ("huge-2", "1"), message
    before = snapshot(run_dir)

    retry = OmegaConf.merge(cfg, OmegaConf.from_dotlist([f"name={advised[1]}", f"optimizer.lr={advised[2]}"]))
    last = pretrain(retry)
    assert last == tmp_path / "ckpt" / "huge-2" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 6  # 2 epochs of 3 batches: trained to the end
    assert snapshot(run_dir) == before  # the diverged run is left as it was


def test_same_seed_same_losses(tmp_path: Path) -> None:
    losses = []
    for name in ("a", "b"):
        pretrain(tiny_pretrain_cfg("simclr_equimod", tmp_path, name=name, limit_train_batches=3,
                                   **{"objectives.equimod.param_stats_samples": 500}))
        rows = metric_rows(tmp_path / "ckpt" / name)
        losses.append([float(rows[s]["train_loss"]) for s in sorted(rows) if "train_loss" in rows[s]])
    assert len(losses[0]) == 3 and all(math.isfinite(v) for v in losses[0])
    assert losses[0] == losses[1]


def test_auto_resume_skips_truncated_and_foreign_checkpoints(tmp_path: Path) -> None:
    cfg = resume_cfg(tmp_path, "pick", epochs=1)
    pretrain(cfg)
    run_dir = tmp_path / "ckpt" / "pick"
    good = run_dir / "steps" / "epoch=0-step=2.ckpt"
    data = good.read_bytes()
    (run_dir / "steps" / "epoch=0-step=9.ckpt").write_bytes(data[: len(data) // 2])  # a torn write
    foreign = torch.load(good, weights_only=False)
    foreign["hyper_parameters"]["cfg"]["optimizer"]["lr"] = 99.0
    foreign["global_step"] = 10
    torch.save(foreign, run_dir / "steps" / "epoch=0-step=10.ckpt")
    with pytest.warns(UserWarning) as record:
        chosen = scan_checkpoints(run_dir, _complete(cfg))[0]
    messages = " ".join(str(w.message) for w in record)
    assert "step=9.ckpt: unreadable" in messages and "step=10.ckpt: trained with different optimizer" in messages
    assert chosen is not None and torch.load(chosen, weights_only=False)["global_step"] == 3
    assert not list(run_dir.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_atomic_checkpoint_io_keeps_the_old_file_when_a_save_fails(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"global_step": 1}, target)
    with pytest.raises(Exception):
        AtomicCheckpointIO().save_checkpoint({"global_step": 2, "bad": lambda: None}, target)  # unpicklable
    assert torch.load(target, weights_only=False) == {"global_step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_bad_step_checkpoint_settings_name_the_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="checkpoint.keep_steps=0 is invalid: must be >= 1"):
        pretrain(resume_cfg(tmp_path, "bad", **{"checkpoint.keep_steps": 0}))
    assert not (tmp_path / "ckpt").exists()


def test_tensor_loader_resumes_mid_epoch_with_the_batches_of_an_unkilled_run(tmp_path: Path) -> None:
    """data.format=tensor saves its position in the checkpoint (Lightning's stateful-dataloader hook):
    killed after the step-4 checkpoint (epoch 1, batch 1) and resumed, every step's loss equals the
    unkilled run's (same batches, same augmentation parameters) to float tolerance."""
    tensor = {"data.format": "tensor"}
    pretrain(resume_cfg(tmp_path, "ref", **tensor))
    ref = metric_rows(tmp_path / "ckpt" / "ref")
    cfg = resume_cfg(tmp_path, "killed", **tensor)
    cfg_file, run_dir, step4 = kill_after_step4(tmp_path, cfg)
    assert torch.load(step4, weights_only=False)["loops"]["fit_loop"]["state_dict"]["combined_loader"] == \
        [{"epoch": 1, "step": 1, "seed": 5, "num_shards": 1}]  # the config default seed
    resumed = run_in_subprocess(cfg_file, delay=0.0)
    err = resumed.communicate(timeout=180)[1].decode()
    assert resumed.returncode == 0, err[-3000:]
    before, after = metric_rows(run_dir), metric_rows(run_dir, "csv-resumed-epoch=1-step=4")
    assert min(s for s, r in after.items() if "train_loss" in r) == 4
    steps = {s: r["train_loss"] for rows in (before, after) for s, r in rows.items() if "train_loss" in r and s < 6}
    assert sorted(steps) == list(range(6))
    for step, loss in steps.items():
        assert float(loss) == pytest.approx(float(ref[step]["train_loss"]), rel=1e-5, abs=1e-6), step
