"""What an objective is: a loss that composes onto any invariance method.

An objective declares what it needs from the batch (`inputs`: the original image; `extras`: named
inputs it asks the pipeline to make per image; `makes`: image inputs it makes on the training device
from the uint8 original in `derive`, e.g. CARE's chunked views or STL's aligned pairs, which replace
the loader's views), which batch inputs it reads backbone features of (`encodes`, alone or in the
views' BatchNorm batches: `encodes_apart`), owns its modules (trained, checkpointed and exported with
the method), may prepare itself once from the training data (`prepare`), and returns
`{"loss": ..., more logs}`. The method adds `weight * loss` to its own loss (EquiMod Eq. 4:
L = L_inv + lambda * L_EquiMod). What an objective makes is normalised by the method's batch stage
(`methods/batch_stage.py`), once, with every other input the step encodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

import torch
from omegaconf import DictConfig
from torch import nn

from solo_equimod.config.components import COMPONENTS
from solo_equimod.config.settings import Settings, setting
from solo_equimod.data.batch import Batch
from solo_equimod.errors import ConfigError

# backbone features of the batch inputs, by the same names: "views" -> list, "original" -> tensor, "extras.<name>"
Features = dict[str, Any]


@dataclass(frozen=True)
class ObjectiveContext:
    """What an objective may know about the method it is composed onto."""

    cfg: DictConfig  # the whole (canonical) pretraining config
    features_dim: int  # width of the backbone features
    gather_distributed: bool  # gather across processes for losses that compare samples
    # the method's head z = embed(h), which its invariance loss compares (CARE reads it); None: it has none
    embed: Callable[[torch.Tensor], torch.Tensor] | None


@dataclass
class ObjectiveSettings(Settings):
    """What every objective is configured with; an objective declares its own as a subclass."""

    weight: float = setting(1.0, "lambda: the objective's loss enters the total times this weight",
                            source="EquiMod Eq. 4", ge=0)


class Objective(nn.Module):
    """Base of every objective; subclasses set the class attributes and implement `forward`."""

    SETTINGS: ClassVar[type[ObjectiveSettings]] = ObjectiveSettings  # its settings declaration
    inputs: ClassVar[tuple[str, ...]] = ()  # optional batch inputs the pipeline must add (OPTIONAL_INPUTS)
    encodes: ClassVar[tuple[str, ...]] = ()  # batch inputs besides the views whose backbone features it reads
    # True: its `encodes` inputs go through the backbone in calls of their own, not in one BatchNorm batch with
    # same-shape views (E-SSL and ESSL encode their pretext images alone); False: shared, as EquiMod's original
    encodes_apart: ClassVar[bool] = False
    # batch inputs it makes in `derive` from the batch's uint8 original, each uint8 levels that the batch stage
    # normalises: "extras.<its name>.<field>" (CARE's chunked views) or "views" (with their "params": the step's
    # views for the method and every objective, STL's aligned pairs); one objective of a config at most makes
    # "views" (`compose.canonical_config`)
    makes: ClassVar[tuple[str, ...]] = ()
    # a name this objective had inside a method before objectives existed: old configs' method_kwargs.<name>
    # and old checkpoints' "<name>." weights are read as this objective's, with LEGACY_RENAMES applied
    LEGACY_NAME: ClassVar[str | None] = None
    LEGACY_RENAMES: ClassVar[dict[str, str]] = {}
    # settings a config saved before config_version k meant without writing them: {k: {key: value}}
    PINNED_BEFORE: ClassVar[dict[int, dict[str, Any]]] = {}

    def __init__(self, settings: ObjectiveSettings, context: ObjectiveContext) -> None:
        super().__init__()
        self.settings = settings
        self.weight = getattr(settings, "weight", 0.0)  # a HeadConditioner adds no loss and declares no weight

    @classmethod
    def extras(cls, settings: ObjectiveSettings, cfg: DictConfig) -> dict[str, Callable[[torch.Tensor], Any]]:
        """Named per-image transforms (uint8 CHW image -> tensor) whose outputs the pipeline puts in
        `batch["extras"]`; keys must be unique across objectives, so prefix them with the objective's name."""
        return {}

    def derive(self, batch: Batch) -> Batch:
        """`makes` objectives: what they make from the batch on the training device, before it is encoded,
        as entries of a batch: `{"extras": {<its name>: {...}}}` or `{"views": [...], "params": [...]}` (one
        row per image of the batch, in its row order). `batch["original"]` holds uint8 levels and the images
        made are uint8 too: the batch stage normalises each input once (`methods/batch_stage.py`)."""
        return {}

    @classmethod
    def requested_inputs(cls, settings: ObjectiveSettings, cfg: DictConfig) -> tuple[str, ...]:
        """The optional batch inputs the pipeline must add for these settings and data (default `inputs`)."""
        return cls.inputs

    def prepare(self, datamodule: Any) -> None:
        """Called once before training with the `PretrainDataModule` (e.g. to estimate statistics)."""

    def forward(self, batch: Batch, feats: Features) -> dict[str, torch.Tensor]:
        raise NotImplementedError  # abstract


@dataclass
class ConditionerSettings(Settings):
    """What every head conditioner is configured with: no weight (it adds no loss)."""

    def check(self, cfg: DictConfig) -> None:
        """The method must build its projector with `conditioned` and feed it `head_inputs`."""
        components = COMPONENTS.require()  # the methods, which sit above the objectives
        method = components.methods.get(cfg.method)
        if method is not None and not method.CONDITIONED_HEADS:
            able = sorted(name for name, cls in components.methods.items()
                          if cls.CONDITIONED_HEADS and name not in components.method_aliases)
            raise ConfigError(f"method={cfg.method!r} has no projector that can be conditioned on the views' "
                              f"parameters; use one of: {', '.join(able)}")


class HeadConditioner(Objective):
    """Composed like an objective (`objectives: {name: {...}}`) but adds no loss: it changes what the
    method's projection heads read. The method builds its projector on `features_dim + embed_dim`
    inputs and wraps it with `condition` (`BaseMethod.conditioned`); each step it feeds the wrapped
    head [h ; descriptor(batch, view)] for each view (`BaseMethod.head_inputs`), so that a momentum
    copy of the head (with its own copy of the descriptor's encoder) conditions the same way.
    `BaseMethod.ssl_step` does not call it: it has no `forward`."""

    SETTINGS: ClassVar[type[Settings]] = ConditionerSettings  # type: ignore[assignment]
    descriptor_dim: int  # width of the raw descriptor appended to h
    embed_dim: int  # width of its embedding, which the wrapped head reads after h

    def descriptor(self, batch: Batch, view: int) -> torch.Tensor:
        """(B, descriptor_dim) raw descriptor of view `view` of the batch."""
        raise NotImplementedError  # abstract

    def condition(self, head: nn.Module) -> nn.Module:
        """`head` (reading `features_dim + embed_dim` inputs) wrapped to read [h ; descriptor]."""
        raise NotImplementedError  # abstract


@runtime_checkable
class PredictsViews(Protocol):
    """An objective with an embedding z' = embed(h) and a predictor of a view's embedding from the
    original's and the view's raw parameters (EquiMod's g' and u); the equivariance measures use it."""

    def embed(self, h: torch.Tensor) -> torch.Tensor: ...

    def predict(self, z_original: torch.Tensor, params: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class PredictsViewsFromExample(Protocol):
    """An objective with an embedding z' = embed(h) that predicts a view's embedding from the original's
    backbone features and an example: another image before and after the same transformation (STL's
    transformation representation, read off a pair instead of parameters); the equivariance measures use it."""

    def embed(self, h: torch.Tensor) -> torch.Tensor: ...

    def predict_from_example(self, h_original: torch.Tensor, h_example_original: torch.Tensor,
                             h_example_view: torch.Tensor) -> torch.Tensor: ...
