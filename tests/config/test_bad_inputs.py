"""Each class of bad input stops a pretraining before its run folder exists: one `error: ...` line on
stderr naming the key (or file) and what is valid, exit status 2, no traceback, nothing written."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from solo_equimod.errors import config_errors_exit
from solo_equimod.run.training import pretrain
from tests.conftest import REPO, tiny_pretrain_cfg, truncate_as_jpeg, write_image_folder

# (case, method, overrides, the message it must print); every row is one class of bad input
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("objective weight < 0", "simclr_equimod", {"objectives.equimod.weight": -1.0},
     r"objectives.equimod.weight=-1.0 is invalid: must be >= 0"),
    ("objective weight nan", "simclr_equimod", {"objectives.equimod.weight": float("nan")},
     r"objectives.equimod.weight=nan is invalid: must be >= 0"),
    ("objective weight not a number", "simclr_equimod", {"objectives.equimod.weight": "abc"},
     r"objectives.equimod.weight: Value 'abc' of type 'str' could not be converted to Float"),
    ("objective width 0", "simclr_equimod", {"objectives.equimod.proj_hidden_dim": 0},
     r"objectives.equimod.proj_hidden_dim=0 is invalid: must be >= 1"),
    ("objective unknown key", "simclr_equimod", {"objectives.equimod.temprature": 0.1},
     r"objectives.equimod.temprature is not a setting; did you mean temperature\? the settings of objectives.equimod "
     r"are: weight, "),
    ("method temperature < 0", "simclr", {"method_kwargs.temperature": -1},
     r"method_kwargs.temperature=-1.0 is invalid: must be > 0"),
    ("method unknown key", "byol", {"method_kwargs.tau": 0.9},
     r"method_kwargs.tau is not a setting;.* the settings of method_kwargs are: .*tau_base"),
    ("MoCo queue 0", "mocov2", {"method_kwargs.queue_size": 0}, r"method_kwargs.queue_size=0 is invalid: must be >= 1"),
    ("MoCo queue under one batch", "mocov2", {"method_kwargs.queue_size": 8},
     r"method_kwargs.queue_size=8 is smaller than the global batch 16 .*use a multiple of 16"),
    ("CARE chunks 0", "simclr", {"objectives.care.chunks": 0}, r"objectives.care.chunks=0 is invalid: must be >= 1"),
    ("CARE chunks over the batch", "simclr", {"objectives.care.chunks": 16},
     r"objectives.care.chunks=16 splits the 16 images of a process's batch .* use objectives.care.chunks <= 8"),
    ("CARE chunks over images_per_process", "simclr",
     {"objectives.care.chunks": 4, "objectives.care.images_per_process": 4},
     r"objectives.care.chunks=4 splits the 4 images .*images_per_process=4\) into chunks of 1"),
    ("backbone kwargs of another backbone", "simclr", {"backbone.kwargs.zero_init_residual": True},
     r"backbone.kwargs.zero_init_residual is not a setting of backbone.name='tiny_cnn'; it accepts: width"),
    ("augmentation hue > 0.5", "simclr", {"augmentations.0.color_jitter.hue": 0.7},
     r"augmentations\[0\].color_jitter.hue=0.7 is invalid: must be \[0, 0.5\]"),
    ("augmentation scales reversed", "simclr", {"augmentations.0.rrc.crop_min_scale": 0.9,
                                                "augmentations.0.rrc.crop_max_scale": 0.5},
     r"augmentations\[0\].rrc: crop_min_scale=0.9 > crop_max_scale=0.5"),
    ("augmentation even blur kernel", "simclr", {"augmentations.0.gaussian_blur.kernel_size": 4},
     r"augmentations\[0\].gaussian_blur: kernel_size=4 is invalid: must be an odd number"),
    ("augmentation unknown nested key", "simclr", {"augmentations.0.rrc.crop_mn_scale": 0.3},
     r"augmentations\[0\].rrc.crop_mn_scale is not a setting; did you mean crop_min_scale or crop_max_scale\? the "
     r"settings of augmentations\[0\].rrc are: enabled, crop_min_scale, crop_max_scale, interpolation"),
    ("augmentation unknown key", "simclr", {"augmentations.0.colour_jitter": {"prob": 0.5}},
     r"augmentations\[0\].colour_jitter is not a setting; did you mean color_jitter\? the settings of augmentations\[0\] "
     r"are: rrc, color_jitter"),
    ("SIE without view pairs", "sie", {}, r"method=sie needs view pairs with group elements"),
    ("renderings with an objective that needs extra inputs", "simclr",
     {"data.dataset": "factors3d", "objectives.rotation.weight": 0.4,
      "augmentations": [{"crop_size": 32, "rrc": {"enabled": False}, "horizontal_flip": {"prob": 0.0}, "num_crops": 2}]},
     r"objectives rotation need extras \(rotation\), which data.dataset='factors3d' cannot make \(it makes the views"),
    ("renderings augmented", "simclr", {"data.dataset": "factors3d"},
     r"augmentations \(view 0\) apply \['rrc.enabled', 'horizontal_flip.prob', .*data.dataset='factors3d' shows"),
    ("limit_train_batches 0", "simclr", {"limit_train_batches": 0},
     r"limit_train_batches=0 is invalid: use null \(all\), an integer >= 1"),
    ("negative learning rate", "simclr", {"optimizer.lr": -0.1}, r"optimizer.lr=-0.1 is invalid: must be > 0"),
    ("rotation scales reversed", "simclr", {"objectives.rotation.crop_min_scale": 0.9,
                                            "objectives.rotation.crop_max_scale": 0.5},
     r"objectives.rotation.crop_min_scale=0.9 is larger than objectives.rotation.crop_max_scale=0.5"),
    ("no epoch checkpoint kept", "simclr", {"checkpoint.keep_epochs": 0},
     r"checkpoint.keep_epochs=0 is invalid: use a positive count, or -1 to keep all"),
    ("timm backbone with a keyword it lacks", "simclr", {"backbone.name": "resnet10t", "backbone.kwargs": {"bogus": 1}},
     r"backbone.kwargs \['bogus', 'width'\] do not fit timm model 'resnet10t': .*unexpected keyword argument"),
    ("data format unknown", "simclr", {"data.format": "tfrecord"},
     r"data.format='tfrecord' is invalid: must be one of: image_folder, dali, tensor"),
]


def _stopped(cfg: Any, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `pretrain` as the commands do; return its one stderr line after asserting exit status 2."""
    with pytest.raises(SystemExit) as stop, config_errors_exit():
        pretrain(cfg)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


@pytest.mark.parametrize(("case", "method", "overrides", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_stops_before_the_run_folder(case: str, method: str, overrides: dict[str, Any], message: str,
                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if "objectives.care" in next(iter(overrides), ""):
        overrides = {"objectives.care.weight": 0.03, **overrides}
    if method == "mocov2":
        overrides = {"method_kwargs.queue_size": 64, **overrides}
    cfg = tiny_pretrain_cfg(method, tmp_path, **{k: v for k, v in overrides.items() if k != "augmentations"})
    if "augmentations" in overrides:  # not a keyword of tiny_pretrain_cfg's: that one names a shipped policy
        cfg.augmentations = overrides["augmentations"]
    assert re.search(message, _stopped(cfg, capsys)), case
    assert not (tmp_path / "ckpt").exists()


def test_dali_cannot_make_an_objectives_extra_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_image_folder(tmp_path / "data", classes=2, per_class=8)
    cfg = tiny_pretrain_cfg("simclr", tmp_path, **{"data.dataset": "custom", "data.train_path": str(folder),
                                                   "data.format": "dali", "objectives.rotation.weight": 0.4})
    assert "objectives rotation need extras (rotation), which data.format='dali' cannot make (it makes views, " \
           "original); use data.format=image_folder" in _stopped(cfg, capsys)
    assert not (tmp_path / "ckpt").exists()


def test_moco_queue_not_a_multiple_of_the_batch_warns_once(tmp_path: Path) -> None:
    """The README's rule: first-in first-out only when queue_size is a multiple of the global batch."""
    from solo_equimod.config.preflight import check_pretrain_config
    from solo_equimod.config.schema import validate

    cfg = validate(tiny_pretrain_cfg("mocov2", tmp_path, **{"method_kwargs.queue_size": 40}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_pretrain_config(cfg)
    fifo = [w for w in caught if "not first-in first-out" in str(w.message)]
    assert len(fifo) == 1 and "queue_size=40 is not a multiple of the global batch 16" in str(fifo[0].message)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_pretrain_config(validate(tiny_pretrain_cfg("mocov2", tmp_path, **{"method_kwargs.queue_size": 64})))
    assert not [w for w in caught if "first-in first-out" in str(w.message)]


@pytest.mark.parametrize("script", ["main_pretrain.py", "main_linear.py"])
def test_commands_print_one_line_and_exit_2(script: str, tmp_path: Path) -> None:
    """The real entry points: no traceback, the key named, status 2, nothing written."""
    config = ["--config-path", "scripts/pretrain/synthetic", "--config-name", "simclr", "method_kwargs.temperature=-1",
              f"checkpoint.dir={tmp_path / 'ckpt'}"] if script == "main_pretrain.py" else \
        ["--config-path", "scripts/linear/synthetic", "--config-name", "linear",
         f"pretrained_feature_extractor={tmp_path / 'missing.ckpt'}"]
    run = subprocess.run([sys.executable, script, *config, f"hydra.run.dir={tmp_path / 'hydra'}"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    wanted = "method_kwargs.temperature=-1.0 is invalid: must be > 0" if script == "main_pretrain.py" else \
        f"checkpoint {tmp_path / 'missing.ckpt'} does not exist"
    assert f"error: {wanted}" in run.stderr
    assert not (tmp_path / "ckpt").exists()


def test_a_truncated_image_under_the_tensor_format_stops_before_the_run_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only a full decode finds a truncated JPEG; data.format=tensor decodes before the run folder is claimed."""
    root = write_image_folder(tmp_path / "data", classes=2, per_class=8, size=(32, 32))
    bad = truncate_as_jpeg(root / "c1" / "img_3.png")
    cfg = tiny_pretrain_cfg("simclr", tmp_path, **{"data.dataset": "custom", "data.train_path": str(root),
                                                   "data.format": "tensor"})
    err = _stopped(cfg, capsys)
    assert repr(str(bad)) in err and "truncated" in err and "data.skip_corrupt=true" in err
    assert not (tmp_path / "ckpt").exists()


def test_a_broken_3diebench_tree_stops_before_the_run_folder(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The tree is checked when the dataset index is built, which the run does before claiming its folder."""
    from tests.helpers.factors3d import three_objects

    root = three_objects(tmp_path / "3die")
    (root / "s" / "b" / "latent_1.npy").unlink()
    cfg = tiny_pretrain_cfg("simclr", tmp_path, **{"data.dataset": "3diebench", "data.train_path": str(root),
                                                   "optimizer.batch_size": 2})
    cfg.augmentations = [{"crop_size": 32, "rrc": {"enabled": False}, "horizontal_flip": {"prob": 0.0},
                          "num_crops": 2}]
    err = _stopped(cfg, capsys)
    assert str(root / "s" / "b" / "latent_1.npy") in err and "does not exist" in err
    assert not (tmp_path / "ckpt").exists()


def test_dali_format_without_dali_installed_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import solo_equimod.data.dali.guard as dali_guard

    def missing() -> None:
        raise ImportError("NVIDIA DALI is not installed: pip install 'solo-equimod[dali]'")

    monkeypatch.setattr(dali_guard, "require_dali", missing)
    folder = write_image_folder(tmp_path / "data", classes=2, per_class=8)
    cfg = tiny_pretrain_cfg("simclr", tmp_path, **{"data.dataset": "custom", "data.train_path": str(folder),
                                                   "data.format": "dali"})
    assert "data.format='dali' needs NVIDIA DALI, which is not installed: NVIDIA DALI is not installed: pip install" \
        in _stopped(cfg, capsys)
    assert not (tmp_path / "ckpt").exists()
