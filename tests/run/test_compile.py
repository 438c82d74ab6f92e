"""`compile`, `channels_last` and `precision` (solo_equimod.run.speed, config.PretrainConfig).

References: the same model uncompiled (eager) on the same batch, and an uninterrupted run for the
killed-and-resumed one. Tolerances: the loss to rtol 1e-5; each gradient to rtol 1e-4 plus an
absolute 1e-5 x the largest gradient entry of the model (inductor fuses and reorders float32 sums,
and a bias just before a BatchNorm has a gradient of ~1e-9 that is pure rounding in both runs).
bf16-mixed against 32-true: 5% of the loss (bfloat16 keeps 8 bits of mantissa in the backbone and
heads; the losses themselves run in float32, see tests/run/test_mixed_precision.py).
Compiling on CPU is slow the first time (about a minute per model; inductor caches the kernels on
disk), so these tests use tiny_cnn of width 8 and few compiled models.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig
from torch._dynamo.utils import counters

from solo_equimod.config.preflight import check_pretrain_config
from solo_equimod.config.schema import validate
from solo_equimod.errors import ConfigError
from solo_equimod.methods import METHODS, BaseMethod
from solo_equimod.run.checkpoints import load_method
from solo_equimod.run.speed import apply_speed_settings, networks
from solo_equimod.run.training import pretrain
from tests.conftest import tiny_pretrain_cfg
from tests.helpers.factors3d import factors3d_cfg
from tests.helpers.runs import kill_after_step4, metric_rows, resume_cfg, run_in_subprocess
from tests.helpers.training import fixed_batch


def _model_and_batch(case: str, tmp_path: Path) -> tuple[BaseMethod, dict, dict]:
    """A seeded model of `case` and two batches of different sizes (the second a smaller last batch)."""
    torch.manual_seed(0)
    if case == "sie":
        cfg = factors3d_cfg("sie", tmp_path, **{"method_kwargs.equi_dim": 16, "method_kwargs.mlp": [32, 32, 32],
                                                "data.num_classes": 6})
        model = METHODS["sie"](cfg)
        g = torch.Generator().manual_seed(0)

        def batch(n: int) -> dict:
            quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=1)
            return {"views": [torch.randn(n, 3, 16, 16, generator=g) for _ in range(2)],
                    "params": [torch.tensor([[0.0, 0, 0, 1]]).repeat(n, 1), quats],
                    "target": torch.zeros(n, dtype=torch.long)}
        return model, batch(16), batch(12)
    method, objectives, policy = {"simclr_equimod": ("simclr_equimod", {}, "byol"),
                                  "byol_equimod": ("byol_equimod", {}, "byol"),
                                  "simclr_care": ("simclr", {"care": {"chunks": 4}}, "care")}[case]
    cfg = validate(tiny_pretrain_cfg(method, tmp_path, augmentations=policy,
                                     **{"data.num_classes": 10, "objectives": objectives}))
    model = METHODS[cfg.method](cfg)
    if "equimod" not in model.objectives:
        return model, fixed_batch(cfg, 16), fixed_batch(cfg, 12)
    equimod = model.objectives["equimod"]  # fitted parameter statistics, as after `prepare_objectives`
    equimod.param_normalizer.fit(torch.rand(50, equimod.param_layout.dim, generator=torch.Generator().manual_seed(2))
                                 * 30)
    # an original already normalised, which the batch stage passes through: on these float values NCHW, NHWC
    # and compiled kernels give the same step; on some inputs (uint8-level originals, one randn seed in six)
    # the first conv's gradient differs between them past the tolerance below
    return model, fixed_batch(cfg, 16, levels=False), fixed_batch(cfg, 12, levels=False)


def _step(model: BaseMethod, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The SSL loss of one step and every gradient it leaves, from a fixed RNG state (CARE draws views)."""
    torch.manual_seed(3)
    model.zero_grad()
    loss = model.ssl_step(batch)[0]["loss"]
    loss.backward()
    return loss.detach(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def _assert_same_step(got: tuple, expected: tuple) -> None:
    (loss, grads), (ref_loss, ref_grads) = got, expected
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=0.0)
    assert set(grads) == set(ref_grads) and ref_grads
    scale = max(g.abs().max().item() for g in ref_grads.values())
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-5 * scale, msg=name)


@pytest.mark.parametrize("case", ["simclr_equimod", "byol_equimod", "simclr_care", "sie"])
def test_a_compiled_step_equals_the_eager_step_and_compiles_a_bounded_number_of_times(case: str,
                                                                                       tmp_path: Path) -> None:
    """Loss and gradients of a compiled step equal the eager ones, at a batch of 16 and then 12 (the
    dynamic batch dimension), and further steps of either size compile nothing new."""
    eager, batch, smaller = _model_and_batch(case, tmp_path)
    compiled = copy.deepcopy(eager)
    apply_speed_settings(compiled, DictConfig({"compile": True}))
    assert list(compiled.state_dict()) == list(eager.state_dict())  # in place: no `_orig_mod.` keys
    for b in (batch, smaller):
        _assert_same_step(_step(compiled, b), _step(eager, b))
    graphs = counters["stats"]["unique_graphs"]
    for b in (batch, smaller, batch):
        _step(compiled, b)
    assert counters["stats"]["unique_graphs"] == graphs, "a step of a size seen before recompiled"


def test_networks_are_the_backbone_heads_and_momentum_copies_not_the_classifier(tmp_path: Path) -> None:
    model = METHODS["byol"](validate(tiny_pretrain_cfg("byol_equimod", tmp_path, **{"data.num_classes": 10})))
    assert sorted(name for name, _ in networks(model)) == [
        "backbone", "momentum_backbone", "momentum_projector", "objectives.equimod.param_encoder",
        "objectives.equimod.predictor", "objectives.equimod.projector", "predictor", "projector"]


def test_channels_last_step_equals_the_default_layout(tmp_path: Path) -> None:
    model, batch, _ = _model_and_batch("simclr_equimod", tmp_path)
    nhwc = copy.deepcopy(model)
    apply_speed_settings(nhwc, DictConfig({"channels_last": True}))
    conv = next(m for m in nhwc.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    _assert_same_step(_step(nhwc, batch), _step(model, batch))


def test_bf16_mixed_on_cpu_trains_within_tolerance_of_32_true(tmp_path: Path) -> None:
    """Same seed, same batches: every step's logged loss under bf16-mixed is within 5% of 32-true's."""
    losses = {}
    for precision in ("32-true", "bf16-mixed"):
        pretrain(tiny_pretrain_cfg("simclr_equimod", tmp_path, name=precision, precision=precision,
                                   **{"objectives.equimod.param_stats_samples": 500}))
        rows = metric_rows(tmp_path / "ckpt" / precision)
        losses[precision] = [float(rows[s]["train_loss"]) for s in sorted(rows) if "train_loss" in rows[s]]
    assert len(losses["32-true"]) == 2 and losses["32-true"] != losses["bf16-mixed"]  # autocast was on
    assert losses["bf16-mixed"] == pytest.approx(losses["32-true"], rel=0.05)


def test_an_unsupported_precision_names_the_key_and_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"precision='64-true' is invalid: must be one of: 32-true, 16-mixed, "
                                          r"bf16-mixed"):
        check_pretrain_config(validate(tiny_pretrain_cfg("simclr", tmp_path, precision="64-true")))


def test_a_compiled_run_killed_and_resumed_continues_exactly_and_loads_uncompiled(tmp_path: Path) -> None:
    """compile: true, data.format=tensor (which resumes mid-epoch): killed after the step-4 checkpoint
    and resumed, every step's loss equals an uninterrupted run's (eager: a compiled step equals an eager
    one, above; to rtol 1e-4 after 6 steps, where a wrong batch or state would differ in the first
    digits); its checkpoint loads strictly into an uncompiled model (`load_method`) and back into a
    compiled one, whose features equal the uncompiled model's."""
    tensor = {"data.format": "tensor"}  # SimCLR+EquiMod: fewer networks to compile than a momentum method's
    pretrain(resume_cfg(tmp_path, "ref", "simclr_equimod", **tensor))
    ref = metric_rows(tmp_path / "ckpt" / "ref")
    cfg = resume_cfg(tmp_path, "killed", "simclr_equimod", **tensor, compile=True)
    cfg_file, run_dir, step4 = kill_after_step4(tmp_path, cfg, deadline_s=600)  # compiling on 2 cores: minutes
    assert step4.is_file()
    resumed = run_in_subprocess(cfg_file, delay=0.0)
    err = resumed.communicate(timeout=600)[1].decode()
    assert resumed.returncode == 0, err[-3000:]
    assert f"Restored all states from the checkpoint at {step4}" in err
    before, after = metric_rows(run_dir), metric_rows(run_dir, "csv-resumed-epoch=1-step=4")
    assert min(s for s, r in after.items() if "train_loss" in r) == 4
    steps = {s: r["train_loss"] for rows in (before, after) for s, r in rows.items() if "train_loss" in r and s < 6}
    assert sorted(steps) == list(range(6))
    for step, loss in steps.items():
        assert float(loss) == pytest.approx(float(ref[step]["train_loss"]), rel=1e-4), step

    state = torch.load(run_dir / "last.ckpt", weights_only=True)["state_dict"]
    assert not [k for k in state if "_orig_mod" in k]
    eager = load_method(run_dir / "last.ckpt")  # strict load: the keys are an uncompiled model's
    compiled = apply_speed_settings(copy.deepcopy(eager), DictConfig({"compile": True}))
    compiled.load_state_dict(eager.state_dict())  # and back into a compiled one
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(compiled.backbone(images), eager.backbone(images), rtol=1e-4, atol=1e-5)
