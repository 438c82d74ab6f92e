"""The commands as a user types them: shipped configs by name, the headline command, mistakes on the
command line and a download without network, each checked against the exact message and exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from solo_equimod.cli import linear_main, pretrain_main
from solo_equimod.shipped import configs_root, resolve
from tests.conftest import REPO

OPTIMIZER_KEYS = "name, batch_size, lr, classifier_lr, weight_decay, kwargs"
EQUIMOD_KEYS = ("weight, proj_hidden_dim, proj_output_dim, param_embed_dim, temperature, loss_variant, "
                "param_stats_samples, param_stats_seed, param_encoder, last_bn_affine, head_batches")
TOP_KEYS = ("config_version, name, method, backbone, method_kwargs, objectives, data, augmentations, optimizer, "
            "scheduler, checkpoint, auto_resume, wandb, max_epochs, max_steps, limit_train_batches, limit_val_batches, "
            "devices, num_nodes, accelerator, strategy, precision, compile, channels_last, sync_batchnorm, seed, log_dir, "
            "log_every_n_steps")
# the headline recipe made tiny: the synthetic data, tiny_cnn, two steps on the CPU
TINY = ["data.dataset=synthetic", "data.synthetic_size=64", "data.num_workers=0", "backbone.name=tiny_cnn",
        "+backbone.kwargs.width=8", "optimizer.batch_size=16", "max_epochs=1", "limit_train_batches=2",
        "limit_val_batches=1", "precision=32-true", "accelerator=cpu", "method_kwargs.proj_hidden_dim=64",
        "method_kwargs.pred_hidden_dim=64", "objectives.equimod.proj_hidden_dim=64"]


def command_error(main, *args: str, capsys) -> str:
    """What `main(args)` prints on stderr when it stops with exit status 2 (anything else fails)."""
    with pytest.raises(SystemExit) as stopped:
        main(list(args))
    assert stopped.value.code == 2
    return capsys.readouterr().err


def test_names_resolve_to_the_shipped_folders():
    pretrain, linear = configs_root() / "pretrain", configs_root() / "linear"
    assert resolve("pretrain", "byol_equimod.yaml") == (pretrain / "cifar", "byol_equimod")  # the paper's CIFAR-10
    assert resolve("pretrain", "imagenet/byol_equimod") == (pretrain / "imagenet", "byol_equimod")
    assert resolve("linear", "linear") == (linear / "cifar", "linear")
    assert resolve("linear", "synthetic/linear.yaml") == (linear / "synthetic", "linear")
    assert configs_root() == REPO / "scripts"  # in a checkout: the files where --config-path users find them


@pytest.mark.parametrize("override, message", [
    ("optimizer.learning_rate=0.1", "optimizer.learning_rate is not a setting; did you mean optimizer.lr? the valid "
                                    f"keys under optimizer are: {OPTIMIZER_KEYS}"),
    ("max_epoch=1", f"max_epoch is not a setting; did you mean max_epochs or max_steps? the valid keys at the top "
                    f"level are: {TOP_KEYS}"),
    ("objectives.equimod.loss_varient=official", "objectives.equimod.loss_varient is not a setting; did you mean "
                                                 "objectives.equimod.loss_variant? the valid keys under "
                                                 f"objectives.equimod are: {EQUIMOD_KEYS}"),
    # `+` cannot add a key the schema lacks either: the same message, no advice to use `+`
    ("+optimizer.learning_rate=0.1", "optimizer.learning_rate is not a setting; did you mean optimizer.lr? the valid "
                                     f"keys under optimizer are: {OPTIMIZER_KEYS}"),
    ("objectives.equimd.weight=1", "objectives.equimd.weight is not a setting; did you mean objectives.equimod or "
                                   "objectives.equimod_views? the valid keys under objectives are: augself, care, "
                                   "cassle, equimod, equimod_views, rotation, stl, transform_prediction"),
    # a declared key this config does not have: `+` is the fix, and only here is it suggested
    ("objectives.rotation.weight=0.4", "objectives.rotation.weight is not in the config 'byol_equimod': to add it, "
                                       "write +objectives.rotation.weight=0.4"),
    ("optimizer.lr=fast", "Error merging override optimizer.lr=fast: Value 'fast' of type 'str' could not be "
                          "converted to Float"),
])
def test_override_mistakes_name_the_valid_keys(override: str, message: str, capsys):
    assert command_error(pretrain_main, "--config-name", "byol_equimod.yaml", override, capsys=capsys) == \
        f"error: {message}\n"


def test_linear_typo_lists_the_linear_schema(capsys):
    assert command_error(linear_main, "--config-name", "synthetic/linear", "optimizer.momentun=0.8",
                         capsys=capsys) == ("error: optimizer.momentun is not a setting; did you mean "
                                            "optimizer.momentum? the valid keys under optimizer are: name, batch_size, "
                                            "lr, weight_decay, momentum, nesterov\n")


@pytest.mark.parametrize("name, message", [
    ("sie", "--config-name sie is ambiguous: it is 3diebench/sie, factors3d/sie; give one of these names"),
    ("imagenet/byol_equimd", "--config-name imagenet/byol_equimd: no shipped pretraining config 'byol_equimd' in "
                             "imagenet/; did you mean imagenet/byol_equimod or imagenet/simclr_equimod? the configs in "
                             "imagenet/ are: barlow_twins, barlow_twins_equimod, byol, byol_equimod, simclr, "
                             "simclr_equimod, simclr_equimod_rotation, simclr_rotation, vicreg, vicreg_equimod"),
    ("imagenett/byol", "--config-name imagenett/byol: there is no folder 'imagenett' of shipped pretraining configs; "
                       "did you mean imagenet or imagenet-100? the folders are: 3diebench, cifar, factors3d, imagenet, "
                       "imagenet-100, stl10, synthetic"),
])
def test_unknown_or_ambiguous_config_names_list_what_exists(name: str, message: str, capsys):
    assert command_error(pretrain_main, "--config-name", name, capsys=capsys) == f"error: {message}\n"


def test_unknown_bare_name_lists_the_cifar_recipes(capsys):
    err = command_error(pretrain_main, "--config-name", "byol_equimd", capsys=capsys)
    cifar = sorted(p.stem for p in (REPO / "scripts/pretrain/cifar").glob("*.yaml") if not p.name.startswith("_"))
    assert err.startswith("error: --config-name byol_equimd: no shipped pretraining config of that name; did you "
                          "mean byol_equimod or simclr_equimod? the configs a bare name finds (cifar/, CIFAR-10) are: "
                          + ", ".join(cifar) + "; ")


def test_own_config_path_keeps_working_and_names_missing_files(capsys):
    err = command_error(pretrain_main, "--config-path", "scripts/pretrain/synthetic", "--config-name", "byol_equimd",
                        capsys=capsys)
    assert err.startswith(f"error: --config-name byol_equimd: no byol_equimd.yaml in {REPO / 'scripts/pretrain/synthetic'}; "
                          "did you mean byol_equimod")


def _run(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_headline_command_composes_the_cifar10_recipe(tmp_path):
    """`python main_pretrain.py --config-name byol_equimod.yaml` from the repository root, as written."""
    proc = _run("main_pretrain.py", "--config-name", "byol_equimod.yaml", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = OmegaConf.create(proc.stdout)
    assert (cfg.method, cfg.data.dataset, cfg.backbone.name, cfg.max_epochs) == ("byol", "cifar10", "resnet18", 800)
    assert cfg.objectives.equimod.weight == 1.0 and cfg.data.download is True


def test_headline_command_trains_with_tiny_overrides(tmp_path):
    proc = _run("main_pretrain.py", "--config-name", "byol_equimod.yaml", *TINY, f"checkpoint.dir={tmp_path / 'ckpt'}",
                f"hydra.run.dir={tmp_path / 'hydra'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "ckpt" / "byol_equimod-synthetic"
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert (saved.method, saved.data.dataset, saved.optimizer.name, saved.data.train_path) == \
        ("byol", "synthetic", "lars", str(REPO / "datasets"))  # the CIFAR-10 recipe (./datasets), overridden
    assert (run_dir / "last.ckpt").is_file()


def test_typo_exits_2_with_one_line_and_no_traceback(tmp_path):
    proc = _run("main_pretrain.py", "--config-name", "byol_equimod.yaml", "max_epoch=1", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr == f"error: max_epoch is not a setting; did you mean max_epochs or max_steps? the valid keys at " \
                          f"the top level are: {TOP_KEYS}\n"


def test_offline_download_says_how_to_run_without_network(tmp_path):
    """A recipe that downloads (data.download=true) with no network: one line naming the local-copy and
    synthetic-data settings. No network is made certain by a proxy at a closed local port."""
    no_network = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}
    data = tmp_path / "datasets"
    proc = _run("main_pretrain.py", "--config-name", "byol_equimod", f"data.train_path={data}", f"data.val_path={data}",
                "data.num_workers=0", "accelerator=cpu", "precision=32-true", f"checkpoint.dir={tmp_path / 'ckpt'}",
                f"hydra.run.dir={tmp_path / 'hydra'}", env=no_network)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.endswith(
        f"error: dataset 'cifar10': could not download into {data} (<urlopen error [Errno 111] Connection refused>); "
        f"offline, point the config at a local copy with data.train_path=DIR data.val_path=DIR data.download=false "
        f"(DIR holding cifar-10-batches-py/), or use the built-in synthetic data with data.dataset=synthetic\n")
