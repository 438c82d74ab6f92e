"""DALI pretraining loader: ImageFolder -> named `Batch`es (`solo_equimod.data.batch`).

It yields the same batches as the torchvision pipeline (`ParamPretrainTransform` + DataLoader):
`index` LongTensor[B], `views` (normalised, [B, 3, S, S] each), `params` (raw Appendix A.1 vectors
[B, D], layout `layout_for(policies)`), `image_size` [B, 2], the normalised `original` [B, 3, H, W]
when asked for, `target` LongTensor[B] and empty `extras` (extra inputs need `image_folder`).
The parameters are drawn batch by batch in the feeder by the one batch-level sampler
(`solo_equimod.augment.sampler`) and the views are made from them inside DALI (`solo_equimod.augment.dali_ops`).

Epochs are owned here, not by DALI's reader: each epoch is a seeded permutation of the whole
dataset (seed + epoch, identical on every rank), padded like `DistributedSampler` to a multiple of
`num_shards` and strided across ranks, then cut into batches; with `drop_last` the incomplete last
batch of a shard is dropped, otherwise it is yielded smaller. The file bytes and the dataset index
of each sample go into the pipeline through `external_source`, so indexes and labels are the real
ones, and one `iter()` is exactly one epoch: it starts the epoch's plan and drains the pipeline to
its end, even if the previous `iter()` was abandoned early (the trap of solo-learn issue #265:
epochs skipped or doubled when Lightning drives a DALI iterator).
`loader.sampler.set_epoch(e)`, which Lightning calls before each epoch, sets the epoch number.

Importing this module does not need DALI; building a loader does.
"""

from __future__ import annotations

import io
import warnings
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.datasets.folder import find_classes, make_dataset

from solo_equimod.augment.params import ParamLayout
from solo_equimod.augment.pipeline import OriginalView
from solo_equimod.augment.policy import ViewPolicy, layout_for
from solo_equimod.augment.sampler import sample_views
from solo_equimod.data.batch import Batch
from solo_equimod.data.images import DECODE_ERRORS, CorruptImageError, mode_problem

if TYPE_CHECKING:
    from nvidia.dali.pipeline import Pipeline

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
INSTALL_HINT = 'NVIDIA DALI is not installed; install the extra with `pip install -e ".[dali]"` (nvidia-dali-cuda130)'
PREFETCH = 2  # DALI's default queue depth; also how many fed batches can be in flight at once


def require_dali() -> None:
    """Raise an ImportError that says how to install DALI when it is missing."""
    try:
        import nvidia.dali  # noqa: F401
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err


def list_image_folder(root: str) -> tuple[list[str], list[int], list[str]]:
    """(files, targets, classes) of an ImageFolder tree of JPEG/PNG files, in torchvision's order."""
    classes, class_to_idx = find_classes(root)
    samples = make_dataset(root, class_to_idx, extensions=IMAGE_EXTENSIONS)
    return [path for path, _ in samples], [target for _, target in samples], classes


def _check_image(path: str) -> tuple[np.ndarray | None, tuple[int, int], str]:
    """The file's bytes and (height, width) from its header, or None and why it is unusable."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        return None, (0, 0), f"cannot read: {err}"
    try:
        with Image.open(io.BytesIO(data.tobytes())) as image:  # header only, cheap
            (width, height), problem = image.size, mode_problem(image)
    except DECODE_ERRORS as err:
        return None, (0, 0), f"not a readable JPEG/PNG image: {err}"
    return (None, (0, 0), problem) if problem else (data, (height, width), "")


def decodes(path: str) -> bool:
    """Whether PIL can fully decode the file (used to name the culprit of a DALI decode failure)."""
    try:
        with Image.open(path) as img:
            img.convert("RGB").load()
        return True
    except DECODE_ERRORS:
        return False


def epoch_plan(
    dataset_size: int, epoch: int, seed: int, shard_id: int, num_shards: int, batch_size: int, drop_last: bool
) -> list[np.ndarray]:
    """The index batches of one shard for one epoch (DistributedSampler semantics, then batching)."""
    generator = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(dataset_size, generator=generator)
    per_shard = -(-dataset_size // num_shards)
    padding = per_shard * num_shards - dataset_size
    if padding:
        order = torch.cat([order, order.repeat(-(-padding // dataset_size))[:padding]])
    shard = order[shard_id::num_shards].numpy().astype(np.int64)
    stop = len(shard) - len(shard) % batch_size if drop_last else len(shard)
    return [shard[i : i + batch_size] for i in range(0, stop, batch_size)]


class EpochSampler:
    """Holds the epoch number; `set_epoch` is what Lightning calls on `loader.sampler`."""

    def __init__(self) -> None:
        self.epoch = 0
        self._explicit = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._explicit = int(epoch), True

    def next_epoch(self) -> int:
        """The epoch to run now; without set_epoch, epochs count up from 0 by themselves."""
        epoch = self.epoch
        if not self._explicit:
            self.epoch += 1
        self._explicit = False
        return epoch


@dataclass(frozen=True)
class _PipelineSpec:
    policies: tuple[ViewPolicy, ...]
    layout: ParamLayout
    mean: tuple[float, ...]
    std: tuple[float, ...]
    original: OriginalView
    with_original: bool
    batch_size: int
    num_threads: int
    device: str
    device_id: int | None


class _Feeder:
    """The `external_source` of the pipeline: per batch, the encoded files, their dataset indexes,
    and every view's parameters drawn here by the batch-level sampler (`sample_views`) from a
    generator seeded by (seed, shard), in the order of `self.names`.

    DALI calls `iter()` on it when an epoch ends and `next()` when it needs data; the plan of the
    epoch is set by the loader before, so DALI's eager re-`iter()` cannot start a wrong epoch.
    """

    def __init__(self, files: Sequence[str], spec: "_PipelineSpec", seed: int, skip_corrupt: bool) -> None:
        from solo_equimod.augment.dali_ops import original_feed_names, view_feed_names

        self.files = list(files)
        self.spec = spec
        self.generator = torch.Generator().manual_seed(seed)
        self.skip_corrupt = skip_corrupt
        self.bad: set[int] = set()
        self.sizes = np.zeros((len(files), 2), dtype=np.int64)  # (height, width) once read
        self.plan: list[np.ndarray] = []
        self.cursor = 0
        self.fed: list[int] = []  # plan positions of the batches handed to DALI this epoch
        self.in_flight: deque[np.ndarray] = deque(maxlen=PREFETCH + 1)
        self.names = ["encoded", "index"]
        if spec.with_original:
            self.names += [f"original_{name}" for name in original_feed_names(spec.original)]
        self.names += [f"view{v}_{name}" for v, policy in enumerate(spec.policies) for name in view_feed_names(policy)]

    def begin(self, plan: list[np.ndarray], cursor: int = 0) -> None:
        self.plan, self.cursor = plan, cursor
        self.fed = self.fed[:0] if cursor == 0 else self.fed
        self.in_flight.clear()

    def stop(self) -> None:
        self.cursor = len(self.plan)

    def __iter__(self) -> "_Feeder":
        return self

    def __next__(self) -> list[Any]:
        while self.cursor < len(self.plan):
            wanted = self.plan[self.cursor]
            self.cursor += 1
            data, index = [], []
            for i in wanted:
                encoded = self._read(int(i))
                if encoded is not None:
                    data.append(encoded)
                    index.append(int(i))
            self.in_flight.append(np.array(index, dtype=np.int64))
            if data:
                self.fed.append(self.cursor - 1)
                return self._feed(data, np.array(index, dtype=np.int64))
        raise StopIteration

    def _feed(self, data: list[np.ndarray], index: np.ndarray) -> list[Any]:
        from solo_equimod.augment.dali_ops import original_feed, view_feed

        heights, widths = self.sizes[index, 0], self.sizes[index, 1]
        fed = {"encoded": data, "index": index}
        if self.spec.with_original:
            fed.update({f"original_{k}": v for k, v in original_feed(self.spec.original, heights, widths).items()})
        for v, policy in enumerate(self.spec.policies):
            drawn = sample_views(policy, torch.from_numpy(heights), torch.from_numpy(widths), self.generator)
            draws = view_feed(self.spec.layout, drawn)
            fed.update({f"view{v}_{k}": value for k, value in draws.items()})
        return [fed[name] for name in self.names]

    def _read(self, i: int) -> np.ndarray | None:
        if i in self.bad:
            return None
        data, size, why = _check_image(self.files[i])
        if data is None:
            self.mark_bad(i, why)
            return None
        self.sizes[i] = size
        return data

    def mark_bad(self, i: int, why: str) -> None:
        message = f"corrupt image file {self.files[i]!r}: {why}"
        if not self.skip_corrupt:
            raise CorruptImageError(message + " (data.skip_corrupt=true skips such files with a warning)")
        warnings.warn(f"skipping {message}", stacklevel=2)
        self.bad.add(i)


def _build_pipeline(spec: _PipelineSpec, feeder: _Feeder) -> "Pipeline":
    from nvidia.dali import fn, pipeline_def, types

    from solo_equimod.augment.dali_ops import make_original, make_view

    @pipeline_def(enable_conditionals=True)
    def pretrain_pipeline():  # type: ignore[no-untyped-def]
        sources = fn.external_source(source=feeder, num_outputs=len(feeder.names), batch=True, cycle="raise")
        fed = dict(zip(feeder.names, sources))
        decoder_device = "mixed" if spec.device == "gpu" else "cpu"
        # no EXIF rotation: torchvision's ImageFolder (PIL) does not apply it either
        image = fn.decoders.image(fed["encoded"], device=decoder_device, output_type=types.RGB, adjust_orientation=False)
        views, params = [], []
        for v, policy in enumerate(spec.policies):
            feed = {name.removeprefix(f"view{v}_"): node for name, node in fed.items() if name.startswith(f"view{v}_")}
            views.append(make_view(image, policy, feed, spec.mean, spec.std, spec.device == "gpu"))
            params.append(feed["params"])
        if not spec.with_original:
            return (fed["index"], *views, *params)
        original_feed = {name.removeprefix("original_"): node for name, node in fed.items() if name.startswith("original_")}
        original = make_original(image, spec.original, original_feed)
        return (fed["index"], *views, *params, original)

    pipe = pretrain_pipeline(
        batch_size=spec.batch_size, num_threads=spec.num_threads, device_id=spec.device_id,
        seed=0, prefetch_queue_depth=PREFETCH,
    )
    pipe.build()
    return pipe


def _to_torch(tensor_list: Any, device: torch.device, what: str) -> torch.Tensor:
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
        self, root: str, spec: _PipelineSpec, shard_id: int, num_shards: int, seed: int,
        drop_last: bool, skip_corrupt: bool,
    ) -> None:
        self.files, targets, self.classes = list_image_folder(root)
        if not self.files:
            raise FileNotFoundError(f"no {'/'.join(IMAGE_EXTENSIONS)} images found under {root!r}")
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard_id={shard_id} must lie in [0, num_shards={num_shards})")
        self.spec = spec
        self.layout: ParamLayout = spec.layout
        self.targets = torch.tensor(targets, dtype=torch.long)
        self.shard_id, self.num_shards, self.seed, self.drop_last = shard_id, num_shards, seed, drop_last
        self.sampler = EpochSampler()
        self.device = torch.device("cuda", spec.device_id or 0) if spec.device == "gpu" else torch.device("cpu")
        # parameter draws differ per rank and are reproducible from `seed`
        self._feeder = _Feeder(self.files, spec, seed * 1_000_003 + shard_id, skip_corrupt)
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
        return _build_pipeline(self.spec, self._feeder)

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
        index = _to_torch(outputs[0], torch.device("cpu"), "index")
        views = [_to_torch(o, self.device, f"view {k}") for k, o in enumerate(outputs[1 : 1 + n])]
        params = [_to_torch(o, torch.device("cpu"), f"params {k}").to(self.device)
                  for k, o in enumerate(outputs[1 + n : 1 + 2 * n])]
        batch: Batch = {"index": index.to(self.device), "views": views, "params": params,
                        "image_size": torch.from_numpy(self._feeder.sizes[index.numpy()]).to(self.device),
                        "target": self.targets[index].to(self.device), "extras": {}}
        if self.spec.with_original:
            batch["original"] = _to_torch(outputs[1 + 2 * n], self.device, "original")
        return batch


def build_dali_pretrain_loader(
    root: str,
    policies: Sequence[ViewPolicy],
    mean: Sequence[float],
    std: Sequence[float],
    original: OriginalView,
    batch_size: int,
    with_original: bool = True,
    extras: Mapping[str, Any] | None = None,
    num_threads: int = 2,
    device: str = "cpu",
    device_id: int | None = None,
    shard_id: int = 0,
    num_shards: int = 1,
    seed: int = 0,
    drop_last: bool = True,
    skip_corrupt: bool = False,
) -> DALIPretrainLoader:
    """The DALI pretraining loader over an ImageFolder tree (`device` "cpu": device_id None; "gpu":
    mixed JPEG decoding and GPU augmentation on `device_id`). `extras`, the extra inputs objectives
    ask for, are per-image torchvision transforms that DALI cannot run: any is an error."""
    if extras:
        raise ValueError(f"data.format=dali cannot make the extra inputs {sorted(extras)} that the configured "
                         "objectives ask for; use data.format=image_folder")
    require_dali()
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if device == "gpu" and device_id is None:
        device_id = 0
    if device == "cpu":
        device_id = None
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    spec = _PipelineSpec(
        policies=tuple(policies), layout=layout_for(policies), mean=tuple(mean), std=tuple(std),
        original=original, with_original=with_original, batch_size=batch_size, num_threads=num_threads, device=device,
        device_id=device_id,
    )
    return DALIPretrainLoader(root, spec, shard_id, num_shards, seed, drop_last, skip_corrupt)
