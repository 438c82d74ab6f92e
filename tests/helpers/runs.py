"""Training runs in subprocesses: a tiny resumable config, its metrics rows, a kill after step 4."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tests.conftest import REPO, tiny_pretrain_cfg

# The subprocess trains with every module step slowed by argv[2] seconds, so the test can kill it
# between two steps without racing a run that takes a second in all.
RUNNER = """
import sys, time
from omegaconf import OmegaConf
import solo_equimod.methods.base as base
base.BaseMethod.on_train_batch_start = lambda self, batch, idx: time.sleep(float(sys.argv[2]))
from solo_equimod.run.training import pretrain
pretrain(OmegaConf.load(sys.argv[1]))
"""


def resume_cfg(tmp_path: Path, name: str, method: str = "byol_equimod", epochs: int = 2, **overrides: object) -> DictConfig:
    """3 batches an epoch, a checkpoint every step."""
    return tiny_pretrain_cfg(method, tmp_path, name=name, max_epochs=epochs, limit_train_batches=None,
                             **{"data.synthetic_size": 48, "checkpoint.every_n_steps": 1, "checkpoint.keep_steps": 2,
                                "auto_resume.enabled": True, "objectives.equimod.param_stats_samples": 500,
                                **overrides})


def metric_rows(run_dir: Path, version: str = "csv") -> dict[int, dict[str, str]]:
    """CSV log rows by step, the non-empty values of all rows of a step merged."""
    rows: dict[int, dict[str, str]] = {}
    with open(run_dir / version / "metrics.csv") as f:
        for row in csv.DictReader(f):
            rows.setdefault(int(row["step"]), {}).update({k: v for k, v in row.items() if v})
    return rows


def run_in_subprocess(cfg_file: Path, delay: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(cfg_file), str(delay)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_after_step4(tmp_path: Path, cfg: DictConfig, deadline_s: float = 120) -> tuple[Path, Path, Path]:
    """Run `cfg` as the "killed" run in a subprocess and SIGKILL it once its step-4 checkpoint exists
    (or after `deadline_s`); returns the saved config file, the run folder and that checkpoint."""
    cfg_file = tmp_path / "killed.yaml"
    OmegaConf.save(cfg, cfg_file)
    run_dir = tmp_path / "ckpt" / "killed"
    step4 = run_dir / "steps" / "epoch=1-step=4.ckpt"
    proc = run_in_subprocess(cfg_file, delay=0.5)
    deadline = time.monotonic() + deadline_s
    while not step4.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    return cfg_file, run_dir, step4
