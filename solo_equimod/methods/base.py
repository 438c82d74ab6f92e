"""Base LightningModules: one backbone, an invariance loss, the objectives composed onto it, an
online linear classifier.

A step takes a named `Batch` (`solo_equimod.data.batch`), lets the batch stage make the objectives'
inputs from the uint8 original and normalise every input once (`methods/batch_stage.py`), encodes
every input that the method or an objective asks for once (`encode_batch`), and returns the method's loss plus
`sum_k weight_k * objective_k` (`ssl_step`). Subclasses implement `method_loss(view_feats, batch)`: the
base method's own loss (an invariance loss; SIE's whole loss; zero for ESSL, all of whose loss is objectives).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import lightning.pytorch as pl
import torch
from lightly.utils.benchmarking import OnlineLinearClassifier
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from solo_equimod.backbones import FeatureMapTap, build_backbone
from solo_equimod.config.defaults_version import CONFIG_VERSION
from solo_equimod.config.settings import Settings, parse_settings, setting
from solo_equimod.data.batch import Batch, LabelledBatch, batch_input
from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.head_batching import HEAD_BATCHES
from solo_equimod.methods.batch_stage import BatchStage
from solo_equimod.objectives import OBJECTIVES, HeadConditioner, PredictsViews, PredictsViewsFromExample
from solo_equimod.objectives.base import Features, ObjectiveContext
from solo_equimod.objectives.compose import build_objectives, canonical_config, legacy_prefixes
from solo_equimod.optim import build_optimizer, build_scheduler

FEATURE_MAP = ":feature_map"  # Features key suffix: an input's pre-pool feature maps (READS_FEATURE_MAPS)


@dataclass
class MethodSettings(Settings):
    """What every method is configured with (`method_kwargs`); a method declares its own as a subclass."""

    gather_distributed: bool = setting(True, "gather embeddings across processes for losses that compare samples")
    head_batches: str = setting("joint", "joint: the heads see both views in one call (shared BatchNorm "
                                "statistics); per_view: one call per view", source="official EquiMod src/model.py",
                                choices=HEAD_BATCHES)


class BaseMethod(pl.LightningModule):
    """Backbone + objectives + online classifier + optimisation; subclasses add heads and the
    invariance loss. Any config spelling is accepted: an alias (`simclr_equimod`) or an old
    `method_kwargs.equimod` is made canonical first (`objectives.compose.canonical_config`)."""

    SETTINGS: ClassVar[type[MethodSettings]] = MethodSettings  # its `method_kwargs` declaration
    # True: `method_loss` gets the views' pre-pool feature maps (B, C, H, W), not pooled features
    READS_FEATURE_MAPS: ClassVar[bool] = False
    # True: its projector is built with `conditioned` on `head_input_dim` and reads `head_inputs`, so a
    # HeadConditioner (CASSLE) can condition it on the views' parameters
    CONDITIONED_HEADS: ClassVar[bool] = False

    # method_kwargs a config saved before config_version k meant without writing them: {k: {key: value}}
    PINNED_BEFORE: ClassVar[dict[int, dict[str, Any]]] = {2: {"head_batches": "per_view"}}

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__()
        cfg = canonical_config(cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg))
        self.kwargs = parse_settings(self.SETTINGS, cfg.get("method_kwargs"), "method_kwargs")
        with open_dict(cfg):
            if cfg.get("config_version") is None:  # built by this code: today's defaults (a saved config has the key)
                cfg.config_version = CONFIG_VERSION
            cfg.method_kwargs = dataclasses.asdict(self.kwargs)  # the checkpoint's config names every setting
        self.save_hyperparameters({"cfg": OmegaConf.to_container(cfg, resolve=True)})
        self.cfg = cfg
        self.gather_distributed = self.kwargs.gather_distributed
        crop_size = int(cfg.augmentations[0].crop_size)
        self.backbone, self.features_dim = build_backbone(
            cfg.backbone.name, cifar=crop_size <= 64, **(cfg.backbone.get("kwargs") or {})
        )
        self.feature_map_tap = FeatureMapTap(self.backbone, cfg.backbone.name) if self.READS_FEATURE_MAPS else None
        num_classes = int(cfg.data.num_classes)
        self.top5_k = min(5, num_classes)  # "top-5" of a dataset with fewer classes is top-all
        self.online_classifier = OnlineLinearClassifier(self.features_dim, num_classes, topk=(1, self.top5_k))
        # `embed(h)`, the head its invariance loss compares, is optional: methods without a head have none, and
        # a head conditioned on the views' parameters reads more than h
        conditioned = any(issubclass(OBJECTIVES[name], HeadConditioner) for name in cfg.get("objectives") or {})
        embed = None if conditioned else getattr(self, "embed", None)
        context = ObjectiveContext(cfg, self.features_dim, self.gather_distributed, embed)
        self.objectives = build_objectives(cfg, context)
        info = DATASET_INFO[cfg.data.dataset]
        self.batch_stage = BatchStage(self.objectives.values(), self.encoded_inputs(), info.mean, info.std)

    # ----- what subclasses provide ------------------------------------------------------------
    @property
    def learnable_params(self) -> list[nn.Module]:
        """Modules trained by the SSL loss (the classifier has its own parameter group)."""
        return [self.backbone, self.objectives]

    def method_loss(self, view_feats: list[torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """The base method's own loss, before any objective's, from the views' backbone features (and the
        batch: images, params): an invariance loss, SIE's whole loss, ESSL's zero; at least {"loss"}."""
        raise NotImplementedError  # abstract

    # ----- projection heads, conditioned on the views' parameters when an objective says so --------
    @property
    def head_conditioner(self) -> HeadConditioner | None:
        """The objective that conditions the projector on each view's parameters (CASSLE), if any."""
        return next((o for o in self.objectives.values() if isinstance(o, HeadConditioner)), None)

    @property
    def head_input_dim(self) -> int:
        """Width of what a projector's first layer reads: h, and the descriptor's embedding when conditioned."""
        conditioner = self.head_conditioner
        return self.features_dim + (0 if conditioner is None else conditioner.embed_dim)

    def conditioned(self, head: nn.Module) -> nn.Module:
        """A projector built on `head_input_dim` inputs, wrapped by the head conditioner if there is one."""
        conditioner = self.head_conditioner
        return head if conditioner is None else conditioner.condition(head)

    def head_inputs(self, feats: list[torch.Tensor], batch: Batch, views: Sequence[int] | None = None
                    ) -> list[torch.Tensor]:
        """What a `conditioned` projector reads for the features of views `views` (default 0, 1, ...):
        h, or [h ; descriptor of that view] under a head conditioner."""
        conditioner = self.head_conditioner
        if conditioner is None:
            return list(feats)
        return [torch.cat([h, conditioner.descriptor(batch, view).to(h.device)], dim=1)
                for h, view in zip(feats, range(len(feats)) if views is None else views)]

    # ----- forward ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.backbone(x)
        return {"feats": feats, "logits": self.online_classifier(feats)}

    def encode(self, inputs: list[torch.Tensor], groups: list[str] | None = None) -> list[torch.Tensor]:
        """Backbone features of several image batches; batches of the same size (and the same
        `groups` entry, when given) go through the backbone together so they share BatchNorm
        statistics (as the official EquiMod code)."""
        return self.encode_with_maps(inputs, groups)[0]

    def encode_with_maps(self, inputs: list[torch.Tensor],
                         groups: list[str] | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """`encode`, and the pre-pool feature map of each batch when the method reads them (else None)."""
        feats: list[torch.Tensor | None] = [None] * len(inputs)
        maps: list[torch.Tensor | None] = [None] * len(inputs)
        by_shape: dict[tuple[Any, ...], list[int]] = {}
        for i, x in enumerate(inputs):
            by_shape.setdefault((groups[i] if groups else "", *x.shape[1:]), []).append(i)
        for idx in by_shape.values():
            out = self.backbone(torch.cat([inputs[i] for i in idx]))
            for i, f in zip(idx, out.chunk(len(idx))):
                feats[i] = f
            if self.feature_map_tap is not None:
                for i, m in zip(idx, self.feature_map_tap.last.chunk(len(idx))):
                    maps[i] = m
        return feats, (maps if self.feature_map_tap is not None else None)  # type: ignore[return-value]

    def encoded_inputs(self) -> dict[str, str]:
        """Batch inputs whose backbone features this step needs, the views first, each with its
        BatchNorm group: "" (shared with same-shape inputs) or, for an objective that
        `encodes_apart`, the input's own name."""
        keys = {"views": ""}
        for objective in self.objectives.values():
            for key in objective.encodes:
                keys.setdefault(key, key if objective.encodes_apart else "")
        return keys

    def encode_batch(self, batch: Batch) -> Features:
        """Backbone features of every input in `encoded_inputs`, by the same names, each computed
        once; inputs of the same shape and group share one backbone call (`encode`)."""
        slots, flat, groups = [], [], []
        for key, group in self.encoded_inputs().items():
            value = batch_input(batch, key)
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            slots.append((key, isinstance(value, (list, tuple)), len(items)))
            flat += items
            groups += [group] * len(items)
        encoded, maps = self.encode_with_maps(flat, groups)
        out, out_maps = iter(encoded), iter(maps or [])
        feats: Features = {}
        for key, is_list, count in slots:
            got = [next(out) for _ in range(count)]
            feats[key] = got if is_list else got[0]
            if maps is not None:
                got = [next(out_maps) for _ in range(count)]
                feats[key + FEATURE_MAP] = got if is_list else got[0]
        return feats

    def ssl_step(self, batch: Batch) -> tuple[dict[str, torch.Tensor], Features]:
        """{"loss": the total, "<method>_loss", "<objective>_loss" and every other term by its
        owner's name} and the features; total = method loss + sum_k weight_k * objective_k (Eq. 4)."""
        batch = self.batch_stage(batch)
        feats = self.encode_batch(batch)
        out = self.method_loss(feats["views" + FEATURE_MAP if self.READS_FEATURE_MAPS else "views"], batch)
        loss = out.pop("loss")
        terms = {f"{self.cfg.method}_loss": loss, **{f"{self.cfg.method}_{k}": v for k, v in out.items()}}
        for name, objective in self.objectives.items():
            if isinstance(objective, HeadConditioner):  # it changed the heads' inputs; it has no loss
                continue
            result = dict(objective(batch, feats))
            objective_loss = result.pop("loss")
            loss = loss + objective.weight * objective_loss
            terms[f"{name}_loss"] = objective_loss
            terms.update({f"{name}_{k}": v for k, v in result.items()})
        return {"loss": loss, **terms}, feats

    @property
    def view_predictor(self) -> PredictsViews | None:
        """What predicts views' embeddings: the method itself (SIE's equivariant projector and hypernetwork),
        else the first objective that does (EquiMod's g' and u), if any."""
        if isinstance(self, PredictsViews):
            return self
        return next((o for o in self.objectives.values() if isinstance(o, PredictsViews)), None)

    @property
    def example_predictor(self) -> PredictsViewsFromExample | None:
        """The first objective that predicts views from an example pair instead of parameters (STL), if any."""
        return next((o for o in self.objectives.values() if isinstance(o, PredictsViewsFromExample)), None)

    def representation_parts(self) -> dict[str, slice]:
        """Named slices of the backbone features that evaluations may read (SIE: invariant, equivariant)."""
        return {"whole": slice(None)}

    def prepare_objectives(self, datamodule: Any) -> None:
        """Let every objective prepare itself once from the training data."""
        for objective in self.objectives.values():
            objective.prepare(datamodule)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Also reads checkpoints from before objectives existed (their `equimod.*` weights)."""
        renames = legacy_prefixes(self.objectives)
        state_dict = {next((new + k[len(old):] for old, new in renames.items() if k.startswith(old)), k): v
                      for k, v in state_dict.items()}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ----- steps --------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        out, feats = self.ssl_step(batch)
        loss, targets = out.pop("loss"), batch["target"]
        view_feats = feats["views"]
        cls_loss, cls_log = self.online_classifier.training_step(
            (torch.cat(view_feats).detach(), targets.repeat(len(view_feats))), batch_idx
        )
        batch_size = targets.shape[0]
        self.log("train_loss", loss.detach(), prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train_{k}": v.detach() for k, v in out.items()}, batch_size=batch_size)
        self.log_dict(cls_log, batch_size=batch_size)
        return loss + cls_loss

    def validation_step(self, batch: LabelledBatch, batch_idx: int) -> None:
        images, targets = batch["image"], batch["target"]
        _, log = self.online_classifier.validation_step((self.backbone(images), targets), batch_idx)
        self.log_dict({"val_acc1": log["val_online_cls_top1"], "val_acc5": log[f"val_online_cls_top{self.top5_k}"],
                       "val_loss": log["val_online_cls_loss"]}, prog_bar=True, batch_size=targets.shape[0],
                      sync_dist=True)

    # ----- optimisation (solo_equimod.optim) ----------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.cfg.optimizer, self.learnable_params, self.online_classifier)
        scheduler = build_scheduler(self.cfg.scheduler, optimizer, int(self.trainer.estimated_stepping_batches),
                                    self.trainer.max_epochs or 1)
        return optimizer if scheduler is None else ([optimizer], [scheduler])
