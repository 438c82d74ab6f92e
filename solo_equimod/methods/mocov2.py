"""MoCo-v2 (He et al. 2020; Chen et al. 2020, arXiv 2003.04297): a query encoder against a momentum
key encoder and a queue of negative keys, InfoNCE at temperature 0.2 (as CARE runs it:
Sharut/CARE imagenet100/model/builder.py)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules.heads import MoCoProjectionHead
from lightly.models.utils import batch_shuffle_distributed, batch_unshuffle_distributed
from lightly.utils import dist
from omegaconf import DictConfig

from solo_equimod.data.batch import Batch
from solo_equimod.methods.momentum import BaseMomentumMethod, MomentumProjectedMethod


class MoCoV2(MomentumProjectedMethod):
    KWARGS_DEFAULTS: ClassVar[dict[str, Any]] = {
        **BaseMomentumMethod.KWARGS_DEFAULTS,
        "tau_base": 0.999, "tau_final": 0.999,  # MoCo: m = 0.999, constant (CARE's moco.sh: --moco-m 0.99)
        "proj_hidden_dim": 2048,  # MoCo-v2: fc -> Linear(2048, 2048) -> ReLU -> fc (builder.py)
        "proj_output_dim": 128,  # MoCo: 128-d keys
        "temperature": 0.2,  # MoCo-v2: tau = 0.2
        "queue_size": 65536,  # MoCo: K = 65,536 negative keys
        "shuffle_bn": True,  # MoCo's shuffling BN across processes (a no-op in one process); or sync_batchnorm=true
    }

    def __init__(self, cfg: DictConfig | dict) -> None:
        super().__init__(cfg)
        k = self.kwargs
        self.projector = MoCoProjectionHead(self.features_dim, k["proj_hidden_dim"], k["proj_output_dim"])
        self.momentum_projector = self._frozen_copy(self.projector)
        # lightly's memory bank is MoCo's queue: it returns the queue before enqueueing the (gathered) keys
        self.criterion = NTXentLoss(temperature=k["temperature"], memory_bank_size=(k["queue_size"], k["proj_output_dim"]),
                                    gather_distributed=self.gather_distributed)
        queue = self.criterion.memory_bank
        for name in ("bank", "bank_ptr"):  # lightly keeps the queue out of the state_dict; a resumed run needs it
            queue.register_buffer(name, getattr(queue, name), persistent=True)

    def invariance_step(self, view_feats: list[torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """Queries from the first view, keys from the second (MoCo's one direction); the keys are enqueued."""
        with torch.no_grad():
            keys = self.momentum_projector(self.encode_momentum(batch["views"][1]))
        return {"loss": self.criterion(self.projector(view_feats[0]), keys)}

    @torch.no_grad()
    def encode_momentum(self, x: torch.Tensor) -> torch.Tensor:
        """Key features; with `shuffle_bn` each process's BatchNorm sees a random share of the global batch."""
        if not (self.kwargs["shuffle_bn"] and dist.world_size() > 1):
            return self.momentum_backbone(x)
        shuffled, order = batch_shuffle_distributed(x)
        return batch_unshuffle_distributed(self.momentum_backbone(shuffled), order)
