"""The settings of linear evaluation (EquiMod paper Sec. 3.2.1; the official code where it is silent),
registered with Hydra as the `linear` schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from solo_equimod.config.components import COMPONENTS
from solo_equimod.config.schema import DataConfig


@dataclass
class LinearOptimizerConfig:
    name: str = "sgd"
    batch_size: int = 256  # Sec. 3.2.1
    lr: float = 0.2  # Sec. 3.2.1
    weight_decay: float = 0.0  # Sec. 3.2.1: no weight decay
    momentum: float = 0.9  # Sec. 3.2.1: Nesterov momentum 0.9
    nesterov: bool = True


@dataclass
class TestViewConfig:
    """The deterministic view of evaluation images; null keys: the dataset's default (see `test_view`)."""

    resize: Optional[int] = None  # shorter side; CIFAR-size crops (32): 36, ImageNet-size: 256 (official code)
    center_crop: Optional[int] = None  # CIFAR-size: 32, ImageNet-size: 224
    interpolation: str = "bicubic"  # official code, src/dataset.py


@dataclass
class LinearConfig:
    name: str = "linear"
    pretrained_feature_extractor: str = "???"
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: LinearOptimizerConfig = field(default_factory=LinearOptimizerConfig)
    max_epochs: int = 90  # Sec. 3.2.1
    min_lr: float = 1e-4  # the per-step cosine ends here (official code, src/main.py)
    augment: bool = True
    # the baseline: the checkpoint's architecture freshly initialised (seeded), through the same protocol
    random_init: bool = False
    test_view: TestViewConfig = field(default_factory=TestViewConfig)
    accelerator: str = "auto"
    devices: Any = 1
    precision: str = "32-true"
    seed: int = 5
    output: Optional[str] = None  # JSON report path; default: linear_<dataset>-<checkpoint stem>.json next to it
    overwrite: bool = False  # replace existing report files (else refused before the evaluation runs)


COMPONENTS.schemas["linear"] = LinearConfig  # the command line registers it with Hydra (config.hydra_schemas)
