"""The pretraining optimiser's parameter groups and the warm-up + cosine schedule, against a
hand-made split of a small model and a naive re-implementation of the schedule."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from solo_equimod.optim import build_optimizer, build_scheduler


def _opt_cfg(name: str, **kwargs: object):
    return OmegaConf.create({"name": name, "lr": 0.5, "weight_decay": 1e-4, "classifier_lr": 0.1, "kwargs": kwargs})


def ids(params) -> set[int]:
    return {id(p) for p in params}


def test_biases_and_norms_are_not_decayed_and_the_classifier_has_its_own_lr() -> None:
    model, classifier = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)), nn.Linear(3, 2)
    groups = {g["name"]: g for g in build_optimizer(_opt_cfg("lars"), [model], classifier).param_groups}
    assert ids(groups["decay"]["params"]) == {id(model[0].weight)}
    assert ids(groups["no_decay"]["params"]) == {id(model[0].bias), id(model[1].weight), id(model[1].bias)}
    assert ids(groups["classifier"]["params"]) == ids(classifier.parameters())
    assert (groups["decay"]["weight_decay"], groups["no_decay"]["weight_decay"]) == (1e-4, 0.0)
    assert (groups["decay"]["lr"], groups["classifier"]["lr"], groups["classifier"]["weight_decay"]) == (0.5, 0.1, 0.0)


@pytest.mark.parametrize("name,kwargs,cls,momentum", [
    ("sgd", {}, torch.optim.SGD, 0.9), ("sgd", {"momentum": 0.0}, torch.optim.SGD, 0.0),
    ("adam", {}, torch.optim.Adam, None), ("adamw", {"betas": [0.8, 0.9]}, torch.optim.AdamW, None)])
def test_optimiser_kwargs_over_its_defaults(name, kwargs, cls, momentum) -> None:
    optimizer = build_optimizer(_opt_cfg(name, **kwargs), [nn.Linear(2, 2)], nn.Linear(2, 2))
    assert type(optimizer) is cls and optimizer.defaults.get("momentum") == momentum
    if "betas" in kwargs:
        assert tuple(optimizer.defaults["betas"]) == (0.8, 0.9)


def test_unknown_optimiser_and_scheduler_name_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"optimizer.name='rmsprop' is unknown; valid: \('lars', 'sgd', 'adam', 'adamw'\)"):
        build_optimizer(_opt_cfg("rmsprop"), [nn.Linear(2, 2)], nn.Linear(2, 2))
    optimizer = build_optimizer(_opt_cfg("sgd"), [nn.Linear(2, 2)], nn.Linear(2, 2))
    with pytest.raises(ValueError, match="scheduler.name='step' is unknown"):
        build_scheduler(OmegaConf.create({"name": "step"}), optimizer, 10, 2)
    assert build_scheduler(OmegaConf.create({"name": "none"}), optimizer, 10, 2) is None


def test_warmup_then_cosine_to_zero_per_step() -> None:
    """10 steps over 2 epochs, 1 warm-up epoch: the lr climbs linearly to its base value at step 4,
    then follows half a cosine to 0 at the last step."""
    optimizer = build_optimizer(_opt_cfg("sgd"), [nn.Linear(2, 2)], nn.Linear(2, 2))
    spec = build_scheduler(OmegaConf.create({"name": "warmup_cosine", "warmup_epochs": 1}), optimizer, 10, 2)
    assert spec["interval"] == "step"
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        spec["scheduler"].step()
    warmup = [0.5 * (t + 1) / 5 for t in range(5)]
    cosine = [0.5 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    assert lrs == pytest.approx(warmup + cosine)
    assert lrs[4] == pytest.approx(0.5) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
