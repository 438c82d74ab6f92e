"""Bad input is caught at the door: every check the config allows runs before a dataset is read or
a file written, and the data checks run before a file is written. Each error names the key, the
value and what is valid."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import solo_equimod.run.training as training
from solo_equimod.errors import ConfigError
from solo_equimod.run.training import pretrain
from tests.conftest import tiny_pretrain_cfg, write_image_folder

AUG = "augmentations.1."


@pytest.mark.parametrize("overrides, message", [
    ({"data.dataset": "imagenet1k"}, "data.dataset='imagenet1k' is invalid: must be one of: cifar10, "),
    ({"max_epochs": 0}, "max_epochs=0 is invalid: must be a positive number of epochs"),
    ({"max_epochs": -1}, "max_epochs=-1 is invalid"),
    ({"max_steps": 0}, "max_steps=0 is invalid: must be -1"),
    ({"optimizer.batch_size": 0}, "optimizer.batch_size=0 is invalid: must be >= 1"),
    ({"optimizer.lr": -0.1}, "optimizer.lr=-0.1 is invalid: must be > 0"),
    ({"optimizer.weight_decay": -1.0}, "optimizer.weight_decay=-1.0 is invalid: must be >= 0"),
    ({"optimizer.name": "adagrad"}, "optimizer.name='adagrad' is invalid: must be one of: lars, sgd, adam, adamw"),
    ({"data.group": "scale"}, "data.group='scale' is invalid: must be one of: rot, rotcolor, all"),
    ({"scheduler.name": "step"}, "scheduler.name='step' is invalid: must be one of: warmup_cosine, none"),
    ({"scheduler.warmup_epochs": -1}, "scheduler.warmup_epochs=-1.0 is invalid"),
    ({"data.num_workers": -2}, "data.num_workers=-2 is invalid: must be >= 0"),
    ({"data.synthetic_size": 0}, "data.synthetic_size=0 is invalid: must be >= 1"),
    ({"data.original.center_crop": 0}, "data.original.center_crop=0 is invalid"),
    ({"checkpoint.frequency": 0}, "checkpoint.frequency=0 is invalid: must be >= 1"),
    ({"checkpoint.every_n_steps": -1}, "checkpoint.every_n_steps=-1 is invalid"),
    ({"limit_train_batches": 0}, "limit_train_batches=0 is invalid: use null .all., an integer >= 1"),
    ({"limit_train_batches": 1.5}, "limit_train_batches=1.5 is invalid"),
    ({"limit_val_batches": -1}, "limit_val_batches=-1 is invalid"),
    ({"log_every_n_steps": 0}, "log_every_n_steps=0 is invalid"),
    ({"data.format": "dali"}, "data.format='dali' reads an image folder: use it with data.dataset one of imagenet, "
                              "imagenet100, custom .data.dataset='synthetic' has no folder."),
    ({"data.format": "tfrecord"}, "data.format='tfrecord' is invalid: must be one of: image_folder, dali"),
    ({"data.dataset": "custom"}, "data.train_path=None is invalid: data.dataset='custom' needs the training split"),
    ({AUG + "color_jitter.brightness": -0.1}, "augmentations[1].color_jitter.brightness=-0.1 is invalid: must be >= 0"),
    ({AUG + "color_jitter.saturation": -1}, "augmentations[1].color_jitter.saturation=-1.0 is invalid: must be >= 0"),
    ({AUG + "color_jitter.hue": 0.6}, "augmentations[1].color_jitter.hue=0.6 is invalid: must be [0, 0.5]"),
    ({AUG + "color_jitter.hue": "lots"}, "augmentations[1].color_jitter.hue: Value 'lots' of type "
                                           "'str' could not be converted to Float"),
    ({AUG + "gaussian_blur.sigma_min": 3.0}, "augmentations[1].gaussian_blur: sigma_min=3.0 > sigma_max=2.0: must "
                                             "satisfy sigma_min <= sigma_max"),
    ({AUG + "gaussian_blur.sigma_min": 0.0}, "augmentations[1].gaussian_blur.sigma_min=0.0 is invalid: must be > 0"),
    ({AUG + "gaussian_blur.kernel_size": 4}, "augmentations[1].gaussian_blur: kernel_size=4 is invalid: "
                                             "must be an odd number"),
    ({AUG + "gaussian_blur.kernel_size": 2.5}, "augmentations[1].gaussian_blur.kernel_size: Value '2.5' "
                                               "of type 'float' could not be converted to Integer"),
    ({AUG + "solarization.threshold": 2.0}, "augmentations[1].solarization.threshold=2.0 is invalid: must be [0, 1]"),
    ({AUG + "horizontal_flip.prob": -0.5}, "augmentations[1].horizontal_flip.prob=-0.5 is invalid: must be [0, 1]"),
    ({AUG + "rrc.crop_min_scale": 0.0}, "augmentations[1].rrc.crop_min_scale=0.0 is invalid: must be (0, 1]"),
    ({AUG + "crop_size": 0}, "augmentations[1].crop_size=0 is invalid: must be >= 1"),
    ({AUG + "num_crops": 0}, "augmentations[1].num_crops=0 is invalid: must be >= 1"),
    ({"name": "../escape"}, "name='../escape': the run name must be a single folder name"),
])
def test_bad_values_are_refused_before_data_or_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     overrides: dict[str, Any], message: str) -> None:
    def no_data(*args: object) -> None:
        raise AssertionError("the dataset was read before the config was checked")

    monkeypatch.setattr(training, "PretrainDataModule", no_data)
    with pytest.raises(ConfigError, match=re.escape(message) if "(" in message or "[" in message else message):
        pretrain(tiny_pretrain_cfg("byol", tmp_path, **overrides))
    assert list(tmp_path.iterdir()) == []


def _data_cfg(tmp_path: Path, train: Path, val: Path | None = None, **overrides: Any) -> Any:
    return tiny_pretrain_cfg("simclr", tmp_path, **{"data.dataset": "custom", "data.train_path": str(train),
                                                    "data.val_path": None if val is None else str(val), **overrides})


def test_a_batch_larger_than_the_dataset_is_refused_before_any_write(tmp_path: Path) -> None:
    train = write_image_folder(tmp_path / "data", classes=2, per_class=5)
    with pytest.raises(ConfigError, match=r"optimizer.batch_size=16 .* larger than the 10 training images of "
                                          r"data.train_path=.*use optimizer.batch_size <= 10"):
        pretrain(_data_cfg(tmp_path, train))
    with pytest.raises(ConfigError, match=r"optimizer.batch_size=40 \(x 1 process\(es\)\) is larger than the 32 "
                                          r"training images of data.dataset=synthetic"):
        pretrain(tiny_pretrain_cfg("simclr", tmp_path, **{"data.synthetic_size": 32, "optimizer.batch_size": 40}))
    assert not (tmp_path / "ckpt").exists()


def test_validation_classes_must_be_the_training_classes(tmp_path: Path) -> None:
    train = write_image_folder(tmp_path / "train", classes=2, per_class=10)
    val = write_image_folder(tmp_path / "val", classes=3, per_class=2)
    with pytest.raises(ConfigError, match=r"data.val_path=.* has other classes than data.train_path=.*only in val: "
                                          r"\['c2'\]"):
        pretrain(_data_cfg(tmp_path, train, val))
    with pytest.raises(ConfigError, match=r"data.num_classes=5 but the training data has 2 classes"):
        pretrain(_data_cfg(tmp_path, train, **{"data.num_classes": 5}))
    assert not (tmp_path / "ckpt").exists()


def test_mixed_image_sizes_name_the_setting(tmp_path: Path) -> None:
    train = write_image_folder(tmp_path / "train", classes=2, per_class=10)
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(train / "c0" / "big.png")
    with pytest.raises(ConfigError, match=r"mixed sizes \(32x32, 40x48, ...\).*data.original.resize and "
                                          r"data.original.center_crop"):
        pretrain(_data_cfg(tmp_path, train))
    assert not (tmp_path / "ckpt").exists()
    # with the setting it names, the same data trains
    last = pretrain(_data_cfg(tmp_path, train, limit_train_batches=1, limit_val_batches=0,
                              **{"data.original.resize": 32, "data.original.center_crop": 32}))
    assert last.name == "last.ckpt"


def test_dali_refuses_files_it_would_silently_ignore(tmp_path: Path) -> None:
    train = write_image_folder(tmp_path / "train", classes=2, per_class=10)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(train / "c1" / "extra.bmp")
    pytest.importorskip("nvidia.dali")
    with pytest.raises(ConfigError, match=r"data.format=dali reads only .jpg/.jpeg/.png files; 1 file\(s\) .*extra.bmp"):
        pretrain(_data_cfg(tmp_path, train, **{"data.format": "dali"}))
    assert not (tmp_path / "ckpt").exists()
