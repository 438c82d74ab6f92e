"""Evaluation of backbones trained elsewhere (`eval/any_backbone.py`): each weights format, written here
in its real key layout (a plain state dict in safetensors or torch; solo-learn's Lightning checkpoint
with `backbone.` keys and args.json; lightly's `backbone.<i>.` children), loads into the named
architecture and gives the source network's features; the refusals name what was expected."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from solo_equimod.backbones import build_backbone
from solo_equimod.errors import ConfigError
from solo_equimod.eval.__main__ import main as eval_main
from solo_equimod.eval.any_backbone import load_backbone, load_foreign
from solo_equimod.run.safe_load import UnsafeCheckpointError

X = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _same_features(net: nn.Module, reference: nn.Module) -> bool:
    net.eval(), reference.eval()
    with torch.no_grad():
        return torch.allclose(net(X), reference(X).flatten(1), atol=1e-5)


def _trained_like(net: nn.Module) -> nn.Module:
    """Non-default BatchNorm statistics and weights, so a load that skipped a tensor would show."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if tensor.is_floating_point():
                tensor.add_(0.1 * torch.randn_like(tensor)).abs_() if "running_var" in name else \
                    tensor.add_(0.1 * torch.randn_like(tensor))
    return net


def test_timm_weights_in_safetensors_with_their_classifier(tmp_path: Path) -> None:
    source = _trained_like(timm.create_model("resnet10t", num_classes=10))
    save_file(source.state_dict(), tmp_path / "r10t.safetensors")  # the classifier fc.* is in the file
    net, layout = load_backbone("timm:resnet10t", tmp_path / "r10t.safetensors")
    source.reset_classifier(0)
    assert layout == "plain" and _same_features(net, source)


def test_torchvision_state_dict_with_the_cifar_stem(tmp_path: Path) -> None:
    source, _ = build_backbone("resnet18", cifar=True)
    torch.save(_trained_like(source).state_dict(), tmp_path / "r18.pth")
    net, layout = load_backbone("torchvision:resnet18", tmp_path / "r18.pth")
    assert layout == "plain" and net.conv1.kernel_size == (3, 3) and _same_features(net, source)


def test_solo_learn_checkpoint_with_its_args_json(tmp_path: Path) -> None:
    """solo-learn: `state_dict` of the LightningModule (backbone, momentum_backbone, projector,
    classifier), the architecture in the args.json its checkpointer writes beside the file."""
    source, _ = build_backbone("resnet18", cifar=True)
    source = _trained_like(source)
    state = {f"backbone.{k}": v for k, v in source.state_dict().items()}
    state |= {f"momentum_backbone.{k}": v + 1 for k, v in source.state_dict().items()}
    state |= {"projector.0.weight": torch.randn(8, 512), "classifier.weight": torch.randn(10, 512)}
    torch.save({"epoch": 3, "global_step": 30, "state_dict": state}, tmp_path / "byol-ep=3.ckpt")
    (tmp_path / "args.json").write_text(json.dumps({"method": "byol", "backbone": {"name": "resnet18"}}))
    model = load_foreign({"pretrained_feature_extractor": str(tmp_path / "byol-ep=3.ckpt")})
    assert model.cfg.method == "torchvision:resnet18 (solo-learn)" and model.features_dim == 512
    assert _same_features(model.backbone, source)


def test_lightly_checkpoint_of_sequential_children(tmp_path: Path) -> None:
    """lightly's examples: `backbone = nn.Sequential(*list(resnet18().children())[:-1])`."""
    resnet = _trained_like(torchvision.models.resnet18())
    backbone = nn.Sequential(*list(resnet.children())[:-1])
    state = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
    state |= {"projection_head.layers.0.weight": torch.randn(16, 512)}
    torch.save({"epoch": 0, "global_step": 2, "state_dict": state}, tmp_path / "lightly.ckpt")
    net, layout = load_backbone("torchvision:resnet18", tmp_path / "lightly.ckpt")
    assert layout == "lightly" and _same_features(net, backbone)


def test_refusals_name_what_was_expected(tmp_path: Path) -> None:
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, tmp_path / "r18.pth")
    with pytest.raises(ConfigError, match=r"plain layout\) does not fit torchvision:resnet34: missing \d+ key"):
        load_backbone("torchvision:resnet34", tmp_path / "r18.pth")  # the wrong architecture
    torch.save({k: v for k, v in state.items() if k != "layer4.1.bn2.weight"}, tmp_path / "partial.pth")
    with pytest.raises(ConfigError, match=r"missing 1 key\(s\) \['layer4.1.bn2.weight'\]"):
        load_backbone("torchvision:resnet18", tmp_path / "partial.pth")
    torch.save(state, tmp_path / "pickle.safetensors")  # a torch pickle under a safetensors name
    with pytest.raises(ConfigError, match="not a safetensors file.*without unpickling"):
        load_backbone("torchvision:resnet18", tmp_path / "pickle.safetensors")
    (tmp_path / "code.pth").write_bytes(pickle.dumps({"x": Path("/")}))  # a class instance: code on load
    with pytest.raises(UnsafeCheckpointError, match="refused without running"):
        load_backbone("torchvision:resnet18", tmp_path / "code.pth")
    with pytest.raises(ConfigError, match="name its architecture with backbone=timm:NAME"):
        load_foreign({"pretrained_feature_extractor": str(tmp_path / "r18.pth")})
    with pytest.raises(ConfigError, match="timm has no model 'resnet_18'"):
        load_foreign({"pretrained_feature_extractor": "timm:resnet_18"})


def test_the_commands_take_an_architecture_and_name_it_in_the_report(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    data = ["data.dataset=synthetic", "data.synthetic_size=24", "data.num_workers=0"]
    assert eval_main(["knn", "timm:resnet10t", *data, "k=3", "num_workers=0", f"output={tmp_path / 'knn.json'}"]) == 0
    report = json.loads((tmp_path / "knn.json").read_text())
    assert report["method"] == "timm:resnet10t (random-init)" and 0 <= report["top1"] <= 100
    assert eval_main(["sensitivity", "timm:resnet10t", *data, "augmentations=cifar/byol", "max_images=16",
                      "num_workers=0", f"output_dir={tmp_path}"]) == 0
    report = json.loads(next(tmp_path.glob("sensitivity_*.json")).read_text())
    assert set(report["representation_shift"]) == {"crop", "flip", "jitter", "gray", "blur", "solarize", "all"}
    assert eval_main(["equivariance", "timm:resnet10t", *data, "num_workers=0"]) == 2  # no predictor of views
    assert "no objective with an embedding head" in capsys.readouterr().err
    assert eval_main(["linear", "timm:resnet10t", *data, "max_epochs=1", "augment=false", "accelerator=cpu",
                      f"output={tmp_path / 'linear.json'}"]) == 0
    assert json.loads((tmp_path / "linear.json").read_text())["method"] == "timm:resnet10t (random-init)"
    assert eval_main(["rotation", "timm:resnet10t", "data.dataset=factors3d", "data.synthetic_size=2",
                      "max_objects=2", "max_epochs=1", "val_pairs=2", f"output_dir={tmp_path}"]) == 0
    assert json.loads(next(tmp_path.glob("rotation_*.json")).read_text())["method"] == "timm:resnet10t (random-init)"
