"""Every file of `examples/` trains two steps on generated images: the losses are finite and every
trainable parameter moved away from its initial value (the same seed builds the untrained model)."""

from __future__ import annotations

import importlib.util
import math
from types import ModuleType

import pytest
import torch
from torchvision.datasets import FakeData

from tests.conftest import REPO

BATCH = 8
EXAMPLES = ["pytorch/simclr_equimod", "pytorch/byol_equimod", "pytorch/simclr_care", "pytorch/simclr_augself",
            "pytorch/esimclr", "pytorch/sie_factors3d", "pytorch_lightning/simclr_equimod"]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.replace("/", "_"), REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _generated_images(transform):  # type: ignore[no-untyped-def]
    return FakeData(size=2 * BATCH, image_size=(3, 32, 32), num_classes=10, transform=transform)


def _untrained(example: ModuleType, trained: torch.nn.Module) -> torch.nn.Module:
    """The example's model as its `main` builds it first, under the same seed."""
    torch.manual_seed(0)
    if hasattr(trained, "care"):
        return type(trained)(BATCH)
    if hasattr(trained, "trainer"):  # the Lightning variant takes its transform
        return type(trained)(example.ParamViews([example.POLICY] * 2, example.CIFAR_MEAN, example.CIFAR_STD, original=True))
    return type(trained)()


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_trains_two_steps(name: str) -> None:
    example = _load(name)
    kwargs = {"epochs": 1, "batch_size": BATCH, "max_steps": 2}
    if name.endswith("sie_factors3d"):
        kwargs["make_dataset"] = lambda: example.factor_bench(objects=2 * BATCH)
    else:
        kwargs["make_dataset"] = _generated_images
    kwargs.update({"accelerator": "cpu"} if name.startswith("pytorch_lightning") else {"device": "cpu"})
    torch.manual_seed(0)
    out = example.main(**kwargs)
    trained, losses = out if isinstance(out, tuple) else (out, [float(out.trainer.callback_metrics["train_loss"])])
    assert losses and all(math.isfinite(v) for v in losses), losses
    if isinstance(out, tuple):
        assert len(losses) == 2
    else:
        assert out.trainer.global_step == 2
    initial = dict(_untrained(example, trained).named_parameters())
    moved = {k: not torch.equal(p.detach().cpu(), initial[k].detach()) for k, p in trained.named_parameters()
             if p.requires_grad}
    assert moved and all(moved.values()), [k for k, v in moved.items() if not v]
