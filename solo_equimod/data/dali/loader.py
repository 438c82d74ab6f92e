"""DALI pretraining loader: ImageFolder -> named `Batch`es (`solo_equimod.data.batch`).

It yields the same batches as the torchvision pipeline (`ParamPretrainTransform` + DataLoader):
`index` LongTensor[B], `views` (normalised, [B, 3, S, S] each), `params` (raw Appendix A.1 vectors
[B, D], layout `layout_for(policies)`), `image_size` [B, 2], the normalised `original` [B, 3, H, W]
when asked for, `target` LongTensor[B] and empty `extras` (extra inputs need `image_folder`).
The parameters are drawn batch by batch in the feeder by the one batch-level sampler
(`solo_equimod.augment.sampler`) and the views are made from them inside DALI (`solo_equimod.augment.dali_ops`).

Epochs are owned here, not by DALI's reader: each is the seeded, sharded plan of
`solo_equimod.data.epochs.epoch_plan`. The file bytes and the dataset index of each sample go into
the pipeline through `external_source` (`feeder.py`), so indexes and labels are the real ones, and
one `iter()` is exactly one epoch: it starts the epoch's plan and drains the pipeline to its end,
even if the previous `iter()` was abandoned early (the trap of solo-learn issue #265: epochs skipped
or doubled when Lightning drives a DALI iterator).
`loader.sampler.set_epoch(e)`, which Lightning calls before each epoch, sets the epoch number.

Importing this module does not need DALI; building a loader does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import torch

from solo_equimod.augment.params import AugmentationLayout
from solo_equimod.data.batch import Batch
from solo_equimod.data.dali.feeder import Feeder, PipelineSpec
from solo_equimod.data.dali.files import IMAGE_EXTENSIONS, decodes, list_image_folder
from solo_equimod.data.dali.graph import build_pipeline
from solo_equimod.data.epochs import EpochSampler, epoch_plan
from solo_equimod.data.images import CorruptImageError

if TYPE_CHECKING:
    from nvidia.dali.pipeline import Pipeline


def to_torch(tensor_list: Any, device: torch.device, what: str) -> torch.Tensor:
    """Copy one DALI output batch into a torch tensor (DALI reuses its buffers after the next run)."""
    from nvidia.dali.plugin.pytorch import feed_ndarray, to_torch_type

    try:
        dense = tensor_list.as_tensor()
    except RuntimeError as err:
        raise ValueError(
            f"DALI output '{what}' has samples of different shapes; for images of varied sizes set the "
            "original view to Resize + CenterCrop (data.original.resize=256 data.original.center_crop=224)"
        ) from err
    out = torch.empty(dense.shape(), dtype=to_torch_type[dense.dtype], device=device)
    feed_ndarray(dense, out)
    return out


class DALIPretrainLoader:
    """Iterable of pretraining batches; `len()` batches per epoch on this shard, one epoch per `iter()`."""

    def __init__(
        self, root: str, spec: PipelineSpec, shard_id: int, num_shards: int, seed: int,
        drop_last: bool, skip_corrupt: bool,
    ) -> None:
        self.files, targets, self.classes = list_image_folder(root)
        if not self.files:
            raise FileNotFoundError(f"no {'/'.join(IMAGE_EXTENSIONS)} images found under {root!r}")
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard_id={shard_id} must lie in [0, num_shards={num_shards})")
        self.spec = spec
        self.layout: AugmentationLayout = spec.layout
        self.targets = torch.tensor(targets, dtype=torch.long)
        self.shard_id, self.num_shards, self.seed, self.drop_last = shard_id, num_shards, seed, drop_last
        self.sampler = EpochSampler()
        self.device = torch.device("cuda", spec.device_id or 0) if spec.device == "gpu" else torch.device("cpu")
        # parameter draws differ per rank and are reproducible from `seed`
        self._feeder = Feeder(self.files, spec, seed * 1_000_003 + shard_id, skip_corrupt)
        self._pipe: Pipeline | None = None
        self._needs_reset = False
        self._epoch_open = False  # an epoch began and DALI has not yet signalled its end

    @property
    def dataset_size(self) -> int:
        return len(self.files)

    def _plan(self, epoch: int) -> list[np.ndarray]:
        return epoch_plan(
            self.dataset_size, epoch, self.seed, self.shard_id, self.num_shards, self.spec.batch_size, self.drop_last
        )

    def __len__(self) -> int:
        return len(self._plan(0))

    def _new_pipeline(self) -> "Pipeline":
        return build_pipeline(self.spec, self._feeder)

    def _drain(self) -> None:
        """Finish an abandoned epoch: feed nothing more and empty the prefetch queue."""
        assert self._pipe is not None
        self._feeder.stop()
        while True:
            try:
                self._pipe.run()
            except StopIteration:
                break
        self._needs_reset = True

    def __iter__(self) -> Iterator[tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor]]:
        # the epoch starts at the first next(), so an iter() that is never consumed (Lightning's
        # iterable check) neither uses up an epoch number nor leaves DALI mid-epoch
        return self._epoch()

    def _epoch(self) -> Iterator[tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor]]:
        epoch = self.sampler.next_epoch()
        if self._pipe is None:
            self._pipe = self._new_pipeline()
        elif self._epoch_open:
            # the last epoch was left before DALI signalled its end (Lightning stops after len()
            # batches without another next()): consume that end, or this epoch would be empty
            self._drain()
        self._feeder.begin(self._plan(epoch))
        if self._needs_reset:
            self._pipe.reset()
            self._needs_reset = False
        self._epoch_open = True
        delivered = 0
        while True:
            try:
                outputs = self._run()
            except StopIteration:
                self._epoch_open = False
                self._needs_reset = True
                return
            except RuntimeError as err:
                self._recover(err, delivered)
                continue
            delivered += 1
            yield self._batch(outputs)

    def _run(self) -> Any:
        assert self._pipe is not None
        return self._pipe.run()

    def _recover(self, err: RuntimeError, delivered: int) -> None:
        """A DALI failure: name the file that PIL cannot decode either, then raise or skip it."""
        if isinstance(err, CorruptImageError):
            raise err
        candidates = [int(i) for batch in self._feeder.in_flight for i in batch]
        culprits = [i for i in candidates if not decodes(self.files[i])]
        if not culprits:
            raise err
        for i in culprits:
            try:
                self._feeder.mark_bad(i, "DALI failed to decode it")
            except CorruptImageError as named:
                raise named from err
        # the failed pipeline is unusable: rebuild it and re-feed the batches not yet delivered
        self._pipe = self._new_pipeline()
        fed = self._feeder.fed
        resume = fed[delivered] if delivered < len(fed) else self._feeder.cursor
        self._feeder.fed = fed[:delivered]
        self._feeder.begin(self._feeder.plan, cursor=resume)

    def _batch(self, outputs: Sequence[Any]) -> Batch:
        n = len(self.spec.policies)
        index = to_torch(outputs[0], torch.device("cpu"), "index")
        views = [to_torch(o, self.device, f"view {k}") for k, o in enumerate(outputs[1 : 1 + n])]
        params = [to_torch(o, torch.device("cpu"), f"params {k}").to(self.device)
                  for k, o in enumerate(outputs[1 + n : 1 + 2 * n])]
        batch: Batch = {"index": index.to(self.device), "views": views, "params": params,
                        "image_size": torch.from_numpy(self._feeder.sizes[index.numpy()]).to(self.device),
                        "target": self.targets[index].to(self.device), "extras": {}}
        if self.spec.with_original:
            batch["original"] = to_torch(outputs[1 + 2 * n], self.device, "original")
        return batch
