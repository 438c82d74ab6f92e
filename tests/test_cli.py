"""The command lines, end to end, as a user runs them (subprocesses, tiny budgets)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import REPO

TINY = ["backbone.kwargs.width=8", "data.num_workers=0", "optimizer.batch_size=32", "max_epochs=1",
        "limit_train_batches=3", "limit_val_batches=2", "precision=32-true", "accelerator=cpu"]


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(REPO / script), *args, "hydra.run.dir=" + str(cwd / "hydra")],
                          cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _pretrain_then_linear(tmp_path: Path, pretrain_args: list[str], linear_args: list[str]) -> dict:
    run("main_pretrain.py", "--config-path", str(REPO / "scripts/pretrain/synthetic"), "--config-name",
        "byol_equimod.yaml", f"checkpoint.dir={tmp_path / 'ckpt'}", *TINY, *pretrain_args, cwd=tmp_path)
    run_dir = next((tmp_path / "ckpt").iterdir())
    ckpt = run_dir / "last.ckpt"
    saved_cfg = (run_dir / "config.yaml").read_text()
    assert "method: byol\n" in saved_cfg and "limit_train_batches: 3" in saved_cfg  # resolved, with overrides
    assert OmegaConf.create(saved_cfg).objectives.equimod.weight == 1.0  # byol_equimod = byol + objectives.equimod
    assert (run_dir / "csv" / "metrics.csv").is_file() and any((run_dir / "tensorboard").iterdir())
    steps = torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]
    assert steps == 3
    out = tmp_path / "linear.json"
    run("main_linear.py", "--config-path", str(REPO / "scripts/linear/synthetic"), "--config-name", "linear.yaml",
        f"pretrained_feature_extractor={ckpt}", "max_epochs=2", "data.num_workers=0", f"output={out}",
        *linear_args, cwd=tmp_path)
    report = json.loads(out.read_text())
    assert 0 <= report["top1"] <= report["top5"] <= 100
    return report


def test_cli_pretrain_and_linear_on_synthetic(tmp_path):
    report = _pretrain_then_linear(tmp_path, ["data.synthetic_size=128"], [])
    assert report["dataset"] == "synthetic" and report["epochs"] == 2


def test_cli_on_cifar10_subset_as_custom(tmp_path, cifar_subset):
    pretrain_args = ["data.dataset=custom", f"data.train_path={cifar_subset / 'train'}",
                     f"data.val_path={cifar_subset / 'val'}"]
    report = _pretrain_then_linear(tmp_path, pretrain_args, pretrain_args[:1] + pretrain_args[1:])
    assert report["dataset"] == "custom"


def test_cli_bad_override_names_the_key(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "main_pretrain.py"), "--config-path",
                           str(REPO / "scripts/pretrain/synthetic"), "--config-name", "simclr.yaml",
                           "optimizer.lr=fast", "hydra.run.dir=" + str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "optimizer.lr" in proc.stderr


@pytest.mark.parametrize(("script", "args"), [
    ("benchmarks/step_time.py", ["--out"]), ("benchmarks/step_time_vs_rev.py", ["--rev", "HEAD", "--out"]),
    ("benchmarks/loader_training.py", ["--json"]), ("benchmarks/dali_throughput.py", ["--json"]),
    ("benchmarks/scan_3diebench.py", ["--out"]),
])
def test_benchmarks_refuse_an_existing_output_before_measuring(tmp_path: Path, script: str, args: list[str]) -> None:
    out = tmp_path / "result.json"
    out.write_text("a user's file")
    proc = subprocess.run([sys.executable, str(REPO / script), *args, str(out)], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and out.read_text() == "a user's file"
    assert proc.stderr.splitlines()[-1] == (f"error: {out} already exists; refusing to overwrite it: remove it, "
                                            f"choose another output, or pass --overwrite")
