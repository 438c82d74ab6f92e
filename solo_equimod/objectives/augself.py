"""AugSelf (Lee et al., NeurIPS 2021; hankook/AugSelf) as an objective: from concat[h1, h2] of the two
views' backbone features, one MLP per task predicts the difference of the views' augmentation
parameters, the crop (centre and size, normalised by the image size) and the colour-jitter factors;
loss = sum over tasks of MSE(tanh(prediction), difference), in both orders (trainers.py SSObjective).

On datasets whose params are group elements relative to the first view (3diebench, factors3d), the one
task is `group`: an MLP on concat[h1, h2] regresses params[1] (the relative rotation quaternion), MSE
without tanh, one order only, as the SIE repository's AugSelf baseline (README; hidden_dim 1024 there)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from lightly.models.modules.heads import ProjectionHead
from torch import nn
from torch.nn import functional as F

from solo_equimod.augment.params import AugmentationLayout
from solo_equimod.augment.policy import ViewPolicy, layout_for, policies_from_config
from solo_equimod.config.settings import setting
from solo_equimod.data.batch import Batch
from solo_equimod.data.param_spec import param_spec
from solo_equimod.errors import ConfigError
from solo_equimod.objectives.base import Features, Objective, ObjectiveContext, ObjectiveSettings

# "per_view": each view's x-centre is mirrored by its own flip; "first_view": both by the first view's flag,
# as the official extract_diff (it reads one flag, f1, for both crops)
FLIP_MODES = ("per_view", "first_view")


def crop_code(params: torch.Tensor, layout: AugmentationLayout, image_size: torch.Tensor) -> torch.Tensor:
    """(top/H, left/W, height/H, width/W) of each view's crop: the official RandomResizedCrop's vector."""
    names = layout.names
    x, y, w, h = (params[:, names.index(k)] for k in ("crop_x", "crop_y", "crop_width", "crop_height"))
    height, width = image_size[:, 0].to(params), image_size[:, 1].to(params)
    return torch.stack([y / height, x / width, h / height, w / width], dim=1)


def flipped(params: torch.Tensor, layout: AugmentationLayout) -> torch.Tensor:
    """Whether each view was flipped (never, when the policy cannot flip)."""
    if "flip_applied" not in layout.names:
        return torch.zeros(params.shape[0], dtype=torch.bool, device=params.device)
    return params[:, layout.names.index("flip_applied")] > 0.5


def crop_centre_size(box: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """[centre y, centre x, height, width] of each crop box; a flipped view's x-centre is mirrored to 1 - x."""
    c = box[:, :2] + box[:, 2:] / 2
    return torch.stack([c[:, 0], torch.where(flip, 1 - c[:, 1], c[:, 1]), box[:, 2], box[:, 3]], dim=1)


def crop_difference(box_a: torch.Tensor, box_b: torch.Tensor, flip_a: torch.Tensor, flip_b: torch.Tensor) -> torch.Tensor:
    """[centre_a - centre_b (y, x), size_a - size_b (h, w)]; a flipped view's x-centre is mirrored to 1 - x."""
    return crop_centre_size(box_a, flip_a) - crop_centre_size(box_b, flip_b)


def color_code(params: torch.Tensor, layout: AugmentationLayout, policy: ViewPolicy) -> torch.Tensor:
    """Per jitter factor (factor - 1) / width of its range (hue / width), as the official _extract_w;
    0 when jitter was not applied (the encoded factors are then 1, 1, 1, 0)."""
    strengths = (policy.brightness, policy.contrast, policy.saturation)
    widths = [1 + s - max(0.0, 1 - s) for s in strengths] + [2 * policy.hue]
    centres = (1.0, 1.0, 1.0, 0.0)
    cols = [params[:, layout.names.index(f"{op}_factor")] for op in ("brightness", "contrast", "saturation", "hue")]
    return torch.stack([(col - c) / w if w > 0 else torch.zeros_like(col) for col, c, w in zip(cols, centres, widths)],
                       dim=1)


def augself_head(input_dim: int, hidden_dim: int, output_dim: int, hidden_layers: int = 2) -> ProjectionHead:
    """models.py load_mlp(2d, 512, n, num_layers=3, last_bn=False): two Linear-BN-ReLU, then Linear."""
    sizes = [input_dim] + [hidden_dim] * hidden_layers
    return ProjectionHead([(sizes[i], hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()) for i in range(hidden_layers)]
                          + [(sizes[-1], output_dim, None, None)])


@dataclass
class AugSelfSettings(ObjectiveSettings):
    weight: float = setting(1.0, "lambda: 1.0 on STL-10 (crop + colour), 0.5 on ImageNet-100",
                            source="AugSelf (Lee et al. 2021)", ge=0)
    crop_weight: float = setting(1.0, "relative weight of the crop task (0 drops it)",
                                 source="official --ss-crop (both tasks weigh lambda)", ge=0)
    color_weight: float = setting(1.0, "relative weight of the colour task (0 drops it)",
                                  source="official --ss-color", ge=0)
    hidden_dim: int = setting(512, "hidden width of each task's MLP", source="official load_ss_predictor(n_hidden=512)",
                              ge=1)
    hidden_layers: int = setting(2, "hidden layers of each task's MLP", source="official load_mlp(num_layers=3)", ge=1)
    flip: str = setting("per_view", "per_view: each crop's x-centre mirrored by its own flip; first_view: by the "
                        "first view's flag", source="official extract_diff reads one flag", choices=FLIP_MODES)
    group_weight: float = setting(1.0, "relative weight of the group-element task (datasets of renderings)", ge=0)


class AugSelf(Objective):
    """Regresses the views' crop and colour differences from concat[h1, h2] and concat[h2, h1]."""

    SETTINGS: ClassVar[type[ObjectiveSettings]] = AugSelfSettings
    TASK_DIMS: ClassVar[dict[str, int]] = {"crop": 4, "color": 4}

    def __init__(self, settings: AugSelfSettings, context: ObjectiveContext) -> None:
        super().__init__(settings, context)
        self.policies = policies_from_config(context.cfg.augmentations)
        self.layout, spec = layout_for(self.policies), param_spec(context.cfg)
        self.group = spec.relative_to == "first_view"
        dims = {"group": spec.dim} if self.group else self.TASK_DIMS
        self.tasks = [t for t in dims if self.task_weight(t) > 0]
        if "color" in self.tasks and not self.layout.jitter:
            raise ConfigError("objectives.augself.color_weight > 0 needs colour jitter in the augmentations; "
                              "set objectives.augself.color_weight=0")
        hidden, layers = self.settings.hidden_dim, self.settings.hidden_layers
        self.heads = nn.ModuleDict({t: augself_head(2 * context.features_dim, hidden, dims[t], layers)
                                    for t in self.tasks})

    def task_weight(self, task: str) -> float:
        """The relative weight of a task: `crop_weight`, `color_weight` or `group_weight`."""
        return getattr(self.settings, f"{task}_weight")

    def differences(self, batch: Batch, first: int, second: int) -> dict[str, torch.Tensor]:
        """Targets of concat[h_first, h_second]: view `first`'s parameters minus view `second`'s."""
        p_a, p_b = batch["params"][first], batch["params"][second]
        flip_a, flip_b = flipped(p_a, self.layout), flipped(p_b, self.layout)
        if self.settings.flip == "first_view":
            flip_b = flip_a
        box_a, box_b = (crop_code(p, self.layout, batch["image_size"]) for p in (p_a, p_b))
        out = {"crop": crop_difference(box_a, box_b, flip_a, flip_b)}
        if "color" in self.tasks:
            out["color"] = (color_code(p_a, self.layout, self.policies[first])
                            - color_code(p_b, self.layout, self.policies[second]))
        return out

    def forward(self, batch: Batch, feats: Features) -> dict[str, torch.Tensor]:
        h1, h2 = feats["views"]
        if self.group:  # params[1] takes view 1 to view 2; its inverse is not a difference of vectors: one order
            out = {t: F.mse_loss(self.heads[t](torch.cat([h1, h2], dim=1)), batch["params"][1]) for t in self.tasks}
            return {"loss": sum(self.task_weight(t) * out[t] for t in self.tasks), **out}
        z = torch.cat([torch.cat([h1, h2], dim=1), torch.cat([h2, h1], dim=1)])
        d12, d21 = self.differences(batch, 0, 1), self.differences(batch, 1, 0)
        out = {t: F.mse_loss(torch.tanh(self.heads[t](z)), torch.cat([d12[t], d21[t]])) for t in self.tasks}
        loss = sum(self.task_weight(t) * out[t] for t in self.tasks)
        return {"loss": loss, **out}
