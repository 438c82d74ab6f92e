"""From a config to a method's objectives: old spellings made canonical, settings checked and
completed with each objective's defaults, modules built, old checkpoints' weights renamed."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from solo_equimod.config.components import COMPONENTS
from solo_equimod.config.settings import parse_settings
from solo_equimod.data.batch import OPTIONAL_INPUTS, PipelineRequests
from solo_equimod.errors import ConfigError
from solo_equimod.objectives import METHOD_ALIASES, OBJECTIVES
from solo_equimod.objectives.base import ObjectiveContext, ObjectiveSettings


def objective_settings(name: str, given: Any, cfg: DictConfig | None = None) -> ObjectiveSettings:
    """`objectives.<name>` over the objective's declared defaults; an unknown objective, key, type or
    value is a ConfigError naming it. With the whole `cfg`, the objective's cross-checks run too."""
    if name not in OBJECTIVES:
        raise ConfigError(f"objectives.{name} is unknown; valid objectives: {', '.join(sorted(OBJECTIVES))}")
    return parse_settings(OBJECTIVES[name].SETTINGS, given, f"objectives.{name}", cfg)


def check_objectives(cfg: DictConfig) -> None:
    """Every objective's settings of a validated config, its cross-checks with `cfg` included."""
    for name, given in (cfg.get("objectives") or {}).items():
        objective_settings(name, given, cfg)


def canonical_config(cfg: DictConfig) -> DictConfig:
    """A copy of `cfg` where a method alias (`simclr_equimod`) is its base method plus its
    objectives, an old `method_kwargs.<legacy name>` is that objective's settings, and every
    objective's settings are complete (so the saved config shows weights and defaults)."""
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        objectives = dict(OmegaConf.to_container(cfg.get("objectives") or OmegaConf.create({}), resolve=True))
        base, implied = METHOD_ALIASES.get(cfg.method, (cfg.method, ()))
        for name in implied:
            objectives.setdefault(name, {})
        method_kwargs = dict(OmegaConf.to_container(cfg.get("method_kwargs") or OmegaConf.create({}), resolve=True))
        for name, cls in OBJECTIVES.items():
            if cls.LEGACY_NAME is not None and cls.LEGACY_NAME in method_kwargs:
                old = method_kwargs.pop(cls.LEGACY_NAME) or {}
                objectives[name] = {**{cls.LEGACY_RENAMES.get(k, k): v for k, v in old.items()},
                                    **(objectives.get(name) or {})}
        makers = [name for name in objectives if name in OBJECTIVES and "views" in OBJECTIVES[name].makes]
        if len(makers) > 1:
            raise ConfigError(f"objectives {', '.join(makers)} each make the step's views; compose at most one of them")
        cfg.method = base
        cfg.method_kwargs = method_kwargs
        cfg.objectives = {name: dataclasses.asdict(objective_settings(name, given)) for name, given in objectives.items()}
    return cfg


def build_objectives(cfg: DictConfig, context: ObjectiveContext) -> nn.ModuleDict:
    """The objectives of a canonical config, in config order."""
    return nn.ModuleDict({name: OBJECTIVES[name](objective_settings(name, given), context)
                          for name, given in (cfg.get("objectives") or {}).items()})


def legacy_prefixes(objectives: nn.ModuleDict) -> dict[str, str]:
    """Old checkpoint key prefix -> the prefix of the objective's weights now ("equimod." -> "objectives.equimod.")."""
    out = {}
    for name, objective in objectives.items():
        legacy = getattr(objective, "LEGACY_NAME", None)
        if legacy is not None:
            out[f"{legacy}."] = f"objectives.{name}."
    return out


def pipeline_requests(cfg: DictConfig) -> PipelineRequests:
    """What the data pipeline must add for a canonical config's objectives: optional inputs
    (OPTIONAL_INPUTS, e.g. the original) and the named extra transforms, unique across objectives.
    The training entry computes it and gives it to the data module."""
    inputs: set[str] = set()
    extras: dict[str, Callable[..., Any]] = {}
    for name, given in (cfg.get("objectives") or {}).items():
        cls, settings = OBJECTIVES[name], objective_settings(name, given)
        requested = cls.requested_inputs(settings, cfg)
        unknown = set(requested) - set(OPTIONAL_INPUTS)
        if unknown:
            raise ValueError(f"objective {name!r} asks for unknown batch input(s) {sorted(unknown)}; "
                             f"optional inputs: {list(OPTIONAL_INPUTS)}")
        inputs.update(requested)
        for key, make in cls.extras(settings, cfg).items():
            if key in extras:
                raise ValueError(f"objective {name!r} asks for extra input {key!r}, which another objective makes")
            extras[key] = make
    return PipelineRequests(frozenset(inputs), extras)


# the configuration reads the objectives through these (it imports no objective)
COMPONENTS.objectives.update(OBJECTIVES)
COMPONENTS.method_aliases.update(METHOD_ALIASES)
COMPONENTS.canonical = canonical_config
COMPONENTS.checks["objectives"] = check_objectives
