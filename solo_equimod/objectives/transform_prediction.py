"""ESSL-2024's pretext tasks (kaotty/Understanding-ESSL, ESSL/equivariant_tasks.py) as one objective:
the pipeline transforms one copy of each image by a transformation drawn uniformly from the task's
k classes (`augment/pretext.py`: flips, colour inversion, grayscale, four-fold rotation / blur,
2x2 jigsaw); a head on the backbone features predicts which, with cross-entropy. Alone it is the
`essl` method's only loss (`methods/essl.py`); next to an invariance loss it is E-SSL-like."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from lightly.models.modules.heads import ProjectionHead
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional as F

from solo_equimod.augment.pretext import TASKS, task_crop, task_sample
from solo_equimod.config.settings import setting
from solo_equimod.data.batch import Batch
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.objectives.base import Features, Objective, ObjectiveContext, ObjectiveSettings


@dataclass
class TransformPredictionSettings(ObjectiveSettings):
    weight: float = setting(1.0, "weight of the task's cross-entropy",
                            source="equivariant_tasks.py: loss = equi_loss + cls_loss (the probe's)", ge=0)
    task: str = setting("four_fold_rotation", "the transformations to tell apart", source="equivariant_tasks.py",
                        choices=tuple(TASKS))
    crop_size: int = setting(32, "side of the task's crop", source="base_transform: RandomCrop(32)", ge=1)
    jigsaw_min_scale: float = setting(0.08, "jigsaw's smallest RandomResizedCrop scale",
                                      source="torchvision's default scale (0.08, 1)", gt=0, le=1)
    hidden_dim: int = setting(2048, "hidden width of the head",
                              source="CIFAR_Network.projector: Linear(512, 2048) -> ReLU -> Linear(2048, k)", ge=1)


class TransformPrediction(Objective):
    """Cross-entropy of the transformation class predicted from h(t_r(x)), r drawn per image."""

    SETTINGS: ClassVar[type[ObjectiveSettings]] = TransformPredictionSettings
    encodes: ClassVar[tuple[str, ...]] = ("extras.transform_prediction.image",)
    encodes_apart: ClassVar[bool] = True  # the official network sees only the task images

    def __init__(self, settings: TransformPredictionSettings, context: ObjectiveContext) -> None:
        super().__init__(settings, context)
        hidden, classes = settings.hidden_dim, TASKS[settings.task].num_classes
        self.head = ProjectionHead([(context.features_dim, hidden, None, nn.ReLU()), (hidden, classes, None, None)])

    @classmethod
    def extras(cls, settings: TransformPredictionSettings, cfg: DictConfig) -> dict[str, Callable[[torch.Tensor], Any]]:
        """"transform_prediction": {"image": the transformed, normalised crop, "label": its class}."""
        info, task = DATASET_INFO[cfg.data.dataset], settings.task
        crop = task_crop(task, settings.crop_size, settings.jigsaw_min_scale)
        return {"transform_prediction": functools.partial(task_sample, task=task, crop=crop, mean=info.mean,
                                                          std=info.std)}

    def forward(self, batch: Batch, feats: Features) -> dict[str, torch.Tensor]:
        logits = self.head(feats["extras.transform_prediction.image"])
        labels = batch["extras"]["transform_prediction"]["label"]
        return {"loss": F.cross_entropy(logits, labels), "acc": (logits.argmax(dim=1) == labels).float().mean().detach()}
