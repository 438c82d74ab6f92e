"""MoCo-v2 (He et al. 2020; Chen et al. 2020, arXiv 2003.04297): a query encoder against a momentum
key encoder and a queue of negative keys, InfoNCE at temperature 0.2 (as CARE runs it:
Sharut/CARE imagenet100/model/builder.py)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules.heads import MoCoProjectionHead
from lightly.models.utils import batch_shuffle_distributed, batch_unshuffle_distributed
from lightly.utils import dist
from omegaconf import DictConfig

from solo_equimod.config.settings import setting
from solo_equimod.config.world import planned_processes
from solo_equimod.data.batch import Batch
from solo_equimod.errors import ConfigError
from solo_equimod.methods.base import MethodSettings
from solo_equimod.methods.momentum import MomentumProjectedMethod, MomentumSettings


@dataclass
class MoCoV2Settings(MomentumSettings):
    tau_base: float = setting(0.999, "momentum m of the key encoder (constant when tau_final equals it)",
                              source="MoCo: m = 0.999 (CARE's moco.sh: --moco-m 0.99)", ge=0, le=1)
    tau_final: float = setting(0.999, "momentum at the end of training", source="MoCo: constant m", ge=0, le=1)
    proj_hidden_dim: int = setting(2048, "hidden width of the MLP head", source="MoCo-v2 builder.py", ge=1)
    proj_output_dim: int = setting(128, "width of the keys", source="MoCo: 128-d keys", ge=1)
    temperature: float = setting(0.2, "tau of InfoNCE", source="MoCo-v2", gt=0)
    queue_size: int = setting(65536, "negative keys in the queue", source="MoCo: K = 65,536", ge=1)
    shuffle_bn: bool = setting(True, "shuffle the key encoder's batch across processes (a no-op in one process); "
                               "or sync_batchnorm=true", source="MoCo's shuffling BN")

    def check(self, cfg: DictConfig) -> None:
        """The queue must hold at least one step's keys; it is first-in first-out only when it holds a
        whole number of global batches (the official code asserts it; lightly's bank drops the overflow)."""
        global_batch = cfg.optimizer.batch_size * planned_processes(cfg)
        if self.queue_size < global_batch:
            raise ConfigError(f"method_kwargs.queue_size={self.queue_size} is smaller than the global batch "
                              f"{global_batch} (optimizer.batch_size x processes): one step's keys would not fit; "
                              f"use a multiple of {global_batch}, e.g. {global_batch * max(1, 65536 // global_batch)}")
        if self.queue_size % global_batch:
            warnings.warn(f"method_kwargs.queue_size={self.queue_size} is not a multiple of the global batch "
                          f"{global_batch}: the queue is not first-in first-out (keys that overflow at the wrap are "
                          f"dropped); MoCo's official code requires a multiple", stacklevel=2)


class MoCoV2(MomentumProjectedMethod):
    SETTINGS: ClassVar[type[MethodSettings]] = MoCoV2Settings

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k = self.kwargs
        self.projector = self.conditioned(MoCoProjectionHead(self.head_input_dim, k.proj_hidden_dim, k.proj_output_dim))
        self.momentum_projector = self._frozen_copy(self.projector)
        # lightly's memory bank is MoCo's queue: it returns the queue before enqueueing the (gathered) keys
        self.criterion = NTXentLoss(temperature=k.temperature, memory_bank_size=(k.queue_size, k.proj_output_dim),
                                    gather_distributed=self.gather_distributed)
        queue = self.criterion.memory_bank
        for name in ("bank", "bank_ptr"):  # lightly keeps the queue out of the state_dict; a resumed run needs it
            queue.register_buffer(name, getattr(queue, name), persistent=True)

    def method_loss(self, view_feats: list[torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """Queries from the first view, keys from the second (MoCo's one direction); the keys are enqueued."""
        with torch.no_grad():
            keys = self.momentum_projector(*self.head_inputs([self.encode_momentum(batch["views"][1])], batch, [1]))
        queries = self.projector(*self.head_inputs([view_feats[0]], batch, [0]))
        return {"loss": self.criterion(queries, keys)}

    @torch.no_grad()
    def encode_momentum(self, x: torch.Tensor) -> torch.Tensor:
        """Key features; with `shuffle_bn` each process's BatchNorm sees a random share of the global batch."""
        if not (self.kwargs.shuffle_bn and dist.world_size() > 1):
            return self.momentum_backbone(x)
        shuffled, order = batch_shuffle_distributed(x)
        return batch_unshuffle_distributed(self.momentum_backbone(shuffled), order)
