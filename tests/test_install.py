"""The package as pip installs it: a wheel built from the sources, installed into a fresh virtual
environment outside the checkout, its commands run from an empty folder with shipped configs by name.

Installing the dependencies again (torch alone is ~5 GB) would make this test minutes long and
gigabytes big, so the fresh environment reuses this one's: a `.pth` file puts this environment's
site-packages after its own, and the wheel goes in with `pip install --no-deps`. Only `.pth` files of
a site directory are executed, so this environment's editable install of the checkout does not
reach the fresh one; the tests check that solo_equimod is imported from the wheel."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

SOURCES = ("setup.py", "MANIFEST.in", "README.md", "solo_equimod", "scripts/pretrain", "scripts/linear")
TINY = ["data.synthetic_size=64", "data.num_workers=0", "backbone.kwargs.width=8", "optimizer.batch_size=16",
        "max_epochs=1", "limit_train_batches=2", "limit_val_batches=1", "precision=32-true", "accelerator=cpu",
        "method_kwargs.proj_hidden_dim=64", "method_kwargs.pred_hidden_dim=64", "objectives.equimod.proj_hidden_dim=64"]


def _check(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, (cmd, proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources it needs (the build leaves nothing in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    _check([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", str(dist), str(src)])
    return next(dist.glob("solo_equimod-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory) -> Path:
    """A fresh virtual environment holding the wheel (no dependencies: they are this environment's)."""
    env = tmp_path_factory.mktemp("venv")
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = Path(_check([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "_deps_of_the_test_env.pth").write_text("".join(f"{path}\n" for path in ours))
    _check([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)])
    return env


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def test_wheel_holds_every_shipped_config_and_the_commands(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(f"solo_equimod/configs/{Path(folder, name).relative_to(REPO / 'scripts')}"
                     for kind in ("pretrain", "linear")
                     for folder, _, files in os.walk(REPO / "scripts" / kind, followlinks=True)
                     for name in files if name.endswith(".yaml"))
    assert sorted(n for n in names if n.endswith(".yaml")) == shipped
    assert {"solo_equimod/configs/pretrain/cifar/_common.yaml",  # shared parts, and those shared through a symlink
            "solo_equimod/configs/pretrain/synthetic/augmentations/byol.yaml"} <= set(shipped)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert zipfile.ZipFile(wheel).read(entry_points).decode().split() == [
        "[console_scripts]", "solo-equimod-linear", "=", "solo_equimod.entry:linear",
        "solo-equimod-pretrain", "=", "solo_equimod.entry:pretrain"]
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "scripts/"))]


def test_installed_commands_pretrain_and_evaluate_from_an_empty_folder(installed: Path, tmp_path: Path):
    bin_dir, work = installed / "bin", tmp_path / "work"
    work.mkdir()
    where = _check([str(bin_dir / "python"), "-c", "import solo_equimod, solo_equimod.shipped as s; "
                    "print(solo_equimod.__file__); print(s.configs_root())"], cwd=work, env=_env()).stdout.split()
    assert where[0].startswith(str(installed)) and where[1].startswith(str(installed))  # the wheel, not the checkout
    listing = _check([str(bin_dir / "python"), "-m", "solo_equimod"], cwd=work, env=_env()).stdout
    assert "solo-equimod-pretrain --config-name NAME" in listing and "    synthetic/: linear" in listing

    _check([str(bin_dir / "solo-equimod-pretrain"), "--config-name", "synthetic/byol_equimod", *TINY,
            f"checkpoint.dir={tmp_path / 'ckpt'}", f"hydra.run.dir={tmp_path / 'hydra'}"], cwd=work, env=_env())
    ckpt = tmp_path / "ckpt" / "byol_equimod-synthetic" / "last.ckpt"
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"] == 2
    out = tmp_path / "linear.json"
    _check([str(bin_dir / "solo-equimod-linear"), "--config-name", "synthetic/linear",
            f"pretrained_feature_extractor={ckpt}", "max_epochs=1", "data.num_workers=0", f"output={out}",
            f"hydra.run.dir={tmp_path / 'hydra-linear'}"], cwd=work, env=_env())
    report = json.loads(out.read_text())
    assert report["dataset"] == "synthetic" and report["epochs"] == 1 and 0 <= report["top1"] <= report["top5"] <= 100
    assert sorted(p.name for p in work.iterdir()) == []  # nothing written into the folder it ran from


def test_installed_command_reports_a_typo_with_status_2(installed: Path, tmp_path: Path):
    proc = subprocess.run([str(installed / "bin" / "solo-equimod-pretrain"), "--config-name", "byol_equimod",
                           "optimizer.learning_rate=0.1", f"hydra.run.dir={tmp_path}"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert proc.stderr == ("error: optimizer.learning_rate is not a setting; did you mean optimizer.lr? the valid keys "
                           "under optimizer are: name, batch_size, lr, classifier_lr, weight_decay, kwargs\n")
