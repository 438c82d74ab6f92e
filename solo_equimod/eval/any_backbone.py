"""Backbones trained elsewhere, for every evaluation command.

    python -m solo_equimod.eval sensitivity timm:resnet18 weights=r18.safetensors data.dataset=custom ...
    python -m solo_equimod.eval knn path/to/solo-learn.ckpt backbone=torchvision:resnet18 data.dataset=cifar10 ...

The architecture is `timm:NAME` (`timm.create_model(NAME, num_classes=0)`) or `torchvision:NAME`
(`torchvision.models.get_model(NAME)`, its classifier replaced by the identity), randomly initialised
unless weights are given. A weights file is read by its key layout, never by unpickling code
(`safetensors`, or `torch.load(weights_only=True)`):

- `plain`: a state dict of the architecture itself (`conv1.weight`, ...), in a safetensors file or
  a torch file, optionally under `state_dict` / `model`; the classifier's keys are ignored;
- `solo-learn`: a Lightning checkpoint whose `state_dict` holds the backbone under `backbone.`
  (older: `encoder.`; solo-learn's main_linear.py); its architecture may come from the `args.json`
  solo-learn writes beside it;
- `lightly`: a Lightning checkpoint of lightly's examples, whose backbone is
  `nn.Sequential(*list(resnet.children())[:-1])`, so `backbone.<i>.` is the model's i-th child.

A torchvision ResNet whose weights have a 3x3 `conv1` gets the CIFAR stem (3x3 stride-1 conv, no
max-pool), as solo-learn builds it for 32-96 px data. The augmentation policy (`augmentations=`:
a shipped name such as `cifar/simclr`, or a YAML file of entries) and the data (`data.*`) come from
the command line. A file that fits no layout, or misses keys, is a ConfigError naming the layout
found and the keys expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from solo_equimod.errors import ConfigError
from solo_equimod.run.safe_load import read_weights
from solo_equimod.shipped import configs_root

ARCHITECTURES = ("timm", "torchvision")
# command-line keys of a backbone from elsewhere, taken out before the evaluation's own schema is checked
KEYS = ("backbone", "weights", "augmentations")
DEFAULT_AUGMENTATIONS = "cifar/simclr"


@dataclass
class ForeignBackbone:
    """What the evaluations read of a method, for a backbone alone: no objective predicts views."""

    backbone: nn.Module
    features_dim: int
    cfg: DictConfig  # method (a label naming the architecture and the weights' layout), data, augmentations
    objectives: dict[str, nn.Module] = field(default_factory=dict)
    view_predictor: None = None
    example_predictor: None = None
    READS_FEATURE_MAPS: ClassVar[bool] = False

    def representation_parts(self) -> dict[str, slice]:
        return {"whole": slice(None)}

    def eval(self) -> "ForeignBackbone":
        self.backbone.eval()
        return self


def is_architecture(spec: Any) -> bool:
    return isinstance(spec, str) and spec.split(":", 1)[0] in ARCHITECTURES and ":" in spec


def build_architecture(spec: str, cifar_stem: bool = False) -> nn.Module:
    """`timm:NAME` or `torchvision:NAME` -> a randomly initialised feature extractor (no classifier)."""
    if not is_architecture(spec):
        raise ConfigError(f"backbone={spec!r} is not an architecture: use timm:NAME or torchvision:NAME "
                          f"(e.g. timm:resnet18, torchvision:resnet50)")
    library, name = spec.split(":", 1)
    if library == "timm":
        import timm

        if not timm.is_model(name):
            raise ConfigError(f"backbone={spec!r}: timm has no model {name!r}")
        return timm.create_model(name, pretrained=False, num_classes=0)
    from torchvision import models

    if name not in models.list_models():
        raise ConfigError(f"backbone={spec!r}: torchvision has no model {name!r}")
    net = models.get_model(name, weights=None)
    for head in ("fc", "classifier", "heads", "head"):  # torchvision's classifier attributes
        if isinstance(getattr(net, head, None), nn.Module):
            setattr(net, head, nn.Identity())
            break
    if cifar_stem:  # solo-learn's and this library's ResNet for small images
        net.conv1 = nn.Conv2d(3, net.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    return net


def backbone_state(stored: dict[str, Any], path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """(layout, the backbone's state dict under the architecture's own key names) of a stored mapping."""
    state = stored.get("state_dict", stored.get("model", stored))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path} holds no state dict: expected tensors by name at the top level or under "
                          f"'state_dict' / 'model' (found keys {sorted(stored)[:6]})")
    prefixed = {k: v for k, v in state.items() if k.startswith(("backbone.", "encoder."))}
    if not prefixed:
        return "plain", dict(state)
    stripped = {k.split(".", 1)[1]: v for k, v in prefixed.items()}
    if all(k.split(".", 1)[0].isdigit() for k in stripped):  # nn.Sequential(*children[:-1]): lightly's examples
        return "lightly", stripped
    return "solo-learn", stripped


def _from_children(net: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """lightly's `backbone.<i>.rest` keys renamed to `<name of the i-th child>.rest`."""
    names = [name for name, _ in net.named_children()]
    out = {}
    for key, value in state.items():
        index, rest = key.split(".", 1)
        if int(index) >= len(names):
            raise ConfigError(f"lightly layout: key backbone.{key} names child {index}, but the architecture has "
                              f"{len(names)} children ({', '.join(names)})")
        out[f"{names[int(index)]}.{rest}"] = value
    return out


def load_backbone(spec: str, weights: str | Path | None) -> tuple[nn.Module, str]:
    """The architecture `spec` with the weights of `weights` (None: random init); (network, layout)."""
    if weights is None:
        return build_architecture(spec), "random-init"
    path = Path(weights)
    layout, state = backbone_state(read_weights(path), path)
    conv1 = state.get("conv1.weight") if layout != "lightly" else state.get("0.weight")
    cifar = spec.startswith("torchvision:resnet") and conv1 is not None and conv1.shape[-1] == 3
    net = build_architecture(spec, cifar_stem=cifar)
    if layout == "lightly":
        state = _from_children(net, state)
    expected = net.state_dict()
    state = {k: v for k, v in state.items() if k in expected or not k.startswith(("fc.", "head.", "classifier."))}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ConfigError(
            f"{path} ({layout} layout) does not fit {spec}: missing {len(missing)} key(s) {missing[:4]}, unexpected "
            f"{len(unexpected)} {unexpected[:4]}; expected {spec}'s state dict ({len(expected)} keys, e.g. "
            f"{list(expected)[:2]}) as is, under 'backbone.' (solo-learn) or as lightly's 'backbone.<i>.' children")
    shapes = [k for k, v in state.items() if v.shape != expected[k].shape]
    if shapes:
        raise ConfigError(f"{path} ({layout} layout): {len(shapes)} tensor(s) of another shape than {spec}'s, e.g. "
                          f"{shapes[0]} {tuple(state[shapes[0]].shape)} vs {tuple(expected[shapes[0]].shape)}")
    net.load_state_dict(state)
    return net, layout


def _solo_learn_args(path: Path) -> dict[str, Any]:
    """solo-learn's `args.json` beside a checkpoint, if any."""
    args = path.parent / "args.json"
    return json.loads(args.read_text()) if args.is_file() else {}


def augmentation_entries(name: str) -> list[Any]:
    """`augmentations=`: a YAML file of entries, or a shipped policy `<dataset>/<name>` (e.g. cifar/simclr)."""
    path = Path(name)
    if not path.is_file():
        folder, _, leaf = name.partition("/")
        path = configs_root() / "pretrain" / folder / "augmentations" / f"{leaf.removesuffix('.yaml')}.yaml"
    if not path.is_file():
        found = (configs_root() / "pretrain").glob("*/augmentations/*.yaml")
        shipped = sorted(f"{p.parent.parent.name}/{p.stem}" for p in found)
        raise ConfigError(f"augmentations={name!r} is neither a YAML file nor a shipped policy; shipped: "
                          f"{', '.join(shipped)}")
    return OmegaConf.to_container(OmegaConf.load(path))  # type: ignore[return-value]


def load_foreign(raw: dict[str, Any]) -> ForeignBackbone:
    """The backbone named by `pretrained_feature_extractor` (an architecture, or a weights file with
    `backbone=`), with the `augmentations` policy, as evaluations read a method."""
    target, weights = raw.get("pretrained_feature_extractor"), raw.get("weights")
    spec = raw.get("backbone")
    if is_architecture(target):
        spec = target
    else:
        weights = target
        args = _solo_learn_args(Path(target))
        if spec is None and args.get("backbone", {}).get("name"):
            spec = f"torchvision:{args['backbone']['name']}"
    if not is_architecture(spec):
        raise ConfigError(f"{target} is not a solo-equimod checkpoint: name its architecture with backbone=timm:NAME "
                          f"or backbone=torchvision:NAME (got backbone={spec!r})")
    net, layout = load_backbone(spec, weights)
    policy = augmentation_entries(raw.get("augmentations") or DEFAULT_AUGMENTATIONS)
    crop = int(policy[0]["crop_size"])
    net.eval()
    with torch.no_grad():
        features_dim = int(net(torch.zeros(2, 3, crop, crop)).shape[1])
    cfg = OmegaConf.create({"method": f"{spec} ({layout})", "data": {}, "augmentations": policy})
    return ForeignBackbone(net, features_dim, cfg)

