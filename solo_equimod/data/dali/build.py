"""The factory of the DALI pretraining loader: checks its arguments, then builds it."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from solo_equimod.augment.pipeline import OriginalView
from solo_equimod.augment.policy import ViewPolicy, layout_for
from solo_equimod.data.dali.feeder import PipelineSpec
from solo_equimod.data.dali.guard import require_dali
from solo_equimod.data.dali.loader import DALIPretrainLoader


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
    spec = PipelineSpec(
        policies=tuple(policies), layout=layout_for(policies), mean=tuple(mean), std=tuple(std),
        original=original, with_original=with_original, batch_size=batch_size, num_threads=num_threads, device=device,
        device_id=device_id,
    )
    return DALIPretrainLoader(root, spec, shard_id, num_shards, seed, drop_last, skip_corrupt)
