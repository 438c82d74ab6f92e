"""Backbones by name: torchvision ResNets (with the CIFAR stem for small images), any timm model,
and `tiny_cnn`, a few-layer network for CPU demos and tests."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from omegaconf import DictConfig
from torch import nn
from torchvision import models as tv_models

from solo_equimod.config.components import COMPONENTS
from solo_equimod.errors import ConfigError

_TORCHVISION_RESNETS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": tv_models.resnet18,
    "resnet34": tv_models.resnet34,
    "resnet50": tv_models.resnet50,
}


def _tiny_cnn(width: int = 32) -> tuple[nn.Module, int]:
    # Own network because no library model trains at a useful rate on a laptop CPU; demo/test only.
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    layers = block(3, width) + block(width, width) + [nn.MaxPool2d(2)]
    layers += block(width, 2 * width) + [nn.MaxPool2d(2)] + block(2 * width, 4 * width)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), 4 * width


# backbone.kwargs a config saved before config_version k meant without writing them, per backbone name
PINNED_BEFORE: dict[int, dict[str, dict[str, Any]]] = {2: {name: {"zero_init_residual": False}
                                                           for name in _TORCHVISION_RESNETS}}


def _torchvision_resnet(name: str, cifar: bool, **kwargs: Any) -> tuple[nn.Module, int]:
    # the last BN of every residual block starts at 0 (official EquiMod src/model.py, SimCLR, BYOL)
    net = _TORCHVISION_RESNETS[name](weights=None, **{"zero_init_residual": True, **kwargs})
    if cifar:  # CIFAR variant (He et al. 2016): 3x3 stride-1 stem, no max-pool
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    features_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, features_dim


def accepted_kwargs(name: str) -> tuple[str, ...] | None:
    """The `backbone.kwargs` a backbone of ours or torchvision's accepts (None: a timm model, whose
    keyword arguments timm checks when it builds it)."""
    if name == "tiny_cnn":
        return tuple(inspect.signature(_tiny_cnn).parameters)
    if name in _TORCHVISION_RESNETS:  # ResNet's own keywords; `norm_layer` and `block` are code, not config
        skip = {"self", "block", "layers", "norm_layer", "num_classes"}
        return tuple(p for p in inspect.signature(tv_models.ResNet.__init__).parameters if p not in skip)
    return None


def check_backbone_kwargs(cfg: DictConfig) -> None:
    """`backbone.kwargs` of a validated config against what `backbone.name` accepts (timm checks its own)."""
    name, kwargs = cfg.backbone.name, cfg.backbone.kwargs or {}
    accepted = accepted_kwargs(name)
    unknown = sorted(set(kwargs) - set(accepted or kwargs))
    if unknown:
        raise ConfigError(f"backbone.kwargs.{unknown[0]} is not a setting of backbone.name={name!r}; it "
                          f"accepts: {', '.join(accepted or ()) or 'none'} (remove it with '~backbone.kwargs."
                          f"{unknown[0]}')")


COMPONENTS.backbone_pinned_before.update(PINNED_BEFORE)  # saved configs read with their old defaults
COMPONENTS.checks["backbone"] = check_backbone_kwargs


def build_backbone(name: str, cifar: bool = False, **kwargs: Any) -> tuple[nn.Module, int]:
    """Name -> (randomly initialised feature extractor without classifier, feature dimension).

    `cifar=True` swaps the ResNet stem for 32-96 px images. Names that are neither ours nor
    torchvision's are looked up in timm; an unknown name is an error listing the options."""
    if name == "tiny_cnn":
        return _tiny_cnn(**kwargs)
    if name in _TORCHVISION_RESNETS:
        return _torchvision_resnet(name, cifar, **kwargs)
    import timm

    if not timm.is_model(name):
        raise ConfigError(
            f"backbone.name={name!r} is unknown; use tiny_cnn, {', '.join(_TORCHVISION_RESNETS)} or a timm model name"
        )
    try:
        net = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
    except TypeError as err:  # timm passes backbone.kwargs on to the model's constructor
        raise ConfigError(f"backbone.kwargs {sorted(kwargs)} do not fit timm model {name!r}: {err}") from None
    return net, int(net.num_features)


class FeatureMapTap:
    """The input of `backbone`'s global pooling layer (the pre-pool feature map, B x C x H x W) at its
    last call, for methods whose heads read the map (EquiCaps' capsules). Taken with a forward
    pre-hook on the last `nn.AdaptiveAvgPool2d`, which torchvision's ResNets, timm's CNNs and tiny_cnn
    all end with, so no backbone is rebuilt and no state_dict key changes."""

    def __init__(self, backbone: nn.Module, name: str) -> None:
        pools = [m for m in backbone.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
        if not pools:
            raise ConfigError(f"backbone.name={name!r} has no global average pooling layer: this method reads the "
                              f"pre-pool feature map of a convolutional backbone (tiny_cnn, a ResNet, a timm CNN)")
        self.last: torch.Tensor | None = None
        pools[-1].register_forward_pre_hook(self._keep)

    def _keep(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.last = inputs[0]
