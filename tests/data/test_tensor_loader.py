"""data.format=tensor: epochs, shards, the named batch, views re-made from their returned
parameters by the per-image torchvision applier, and the errors for over-budget or mixed-size data.
References: the dataset itself (indexes, labels), `apply_view_params`, `solo_equimod.data.epochs.epoch_plan`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from solo_equimod.augment.per_image_applier import apply_view_params
from solo_equimod.augment.pipeline import OriginalView, to_uint8_tensor
from solo_equimod.augment.policy import ViewPolicy
from solo_equimod.data import tensor_loader
from solo_equimod.data.synthetic import SyntheticShapes
from solo_equimod.data.tensor_loader import TensorPretrainLoader, decode_dataset
from solo_equimod.errors import ConfigError
from tests.conftest import truncate_as_jpeg, write_image_folder

POLICIES = [ViewPolicy(crop_size=32, saturation=0.2, interpolation="bicubic"),
            ViewPolicy(crop_size=24, saturation=0.2, blur_prob=0.5, solarize_prob=0.2)]
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _loader(images: torch.Tensor, targets: torch.Tensor, **kwargs) -> TensorPretrainLoader:  # type: ignore[no-untyped-def]
    args = dict(policies=POLICIES, mean=MEAN, std=STD, original=OriginalView(), with_original=True, extras=None,
                batch_size=6, seed=3)
    return TensorPretrainLoader(images, targets, **{**args, **kwargs})


def test_epochs_shards_batches_and_reapplied_views() -> None:
    images, targets = decode_dataset(SyntheticShapes(26, image_size=32), OriginalView(), budget_gb=1.0)
    assert images.shape == (26, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(targets, torch.tensor([SyntheticShapes(26, image_size=32)[i][1] for i in range(26)]))
    shards = [_loader(images, targets, shard_id=r, num_shards=2) for r in range(2)]
    assert [len(s) for s in shards] == [2, 2]  # 13 per shard, the incomplete last batch dropped
    seen = [[i for b in shard for i in b["index"].tolist()] for shard in shards]
    assert not set(seen[0]) & set(seen[1]) and len(seen[0]) == len(seen[1]) == 12
    again = [i for b in shards[0] for i in b["index"].tolist()]
    assert again != seen[0]  # the next epoch is another permutation

    loader = _loader(images, targets)
    batch = next(iter(loader))
    assert set(batch) == {"index", "views", "params", "image_size", "original", "target", "extras"}
    assert [v.shape for v in batch["views"]] == [(6, 3, 32, 32), (6, 3, 24, 24)]
    assert [p.shape for p in batch["params"]] == [(6, 18)] * 2 and batch["image_size"].tolist() == [[32, 32]] * 6
    assert torch.equal(batch["target"], targets[batch["index"]])
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    assert torch.equal(batch["original"], images[batch["index"]])  # uint8 levels: the method normalises them
    for k, policy in enumerate(POLICIES):
        for b, i in enumerate(batch["index"].tolist()):
            ref = apply_view_params(images[i], loader.layout.decode(batch["params"][k][b]), policy).float()
            got = (batch["views"][k][b] * std + mean) * 255.0
            assert (got - ref).abs().mean() <= 1.0  # the applier's tolerance (tests/augment/test_batched_applier.py)


def test_state_dict_continues_mid_epoch_with_the_same_batches() -> None:
    images, targets = decode_dataset(SyntheticShapes(30, image_size=32), OriginalView(), budget_gb=1.0)
    full = [b for b in _loader(images, targets)]
    first = _loader(images, targets)
    it = iter(first)
    next(it), next(it)
    state = first.state_dict()
    assert state == {"epoch": 0, "step": 2, "seed": 3, "num_shards": 1}
    resumed = _loader(images, targets)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == 3
    for a, b in zip(rest, full[2:]):
        assert torch.equal(a["index"], b["index"]) and all(torch.equal(x, y) for x, y in zip(a["views"], b["views"]))
    with pytest.raises(ValueError, match="seed=3 over 1 process.*seed=4"):
        _loader(images, targets, seed=4).load_state_dict(state)


def test_over_budget_and_mixed_sizes_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import ImageFolder

    with pytest.raises(ConfigError, match=r"over data.tensor_budget_gb=1e-06.*data.format=image_folder or dali"):
        decode_dataset(SyntheticShapes(26, image_size=32), OriginalView(), budget_gb=1e-6)
    write_image_folder(tmp_path / "a", classes=2, per_class=2, size=(40, 30))
    write_image_folder(tmp_path / "b", classes=1, per_class=1, size=(20, 50))
    (tmp_path / "b" / "c0" / "img_0.png").rename(tmp_path / "a" / "c0" / "img_9.png")
    mixed = ImageFolder(str(tmp_path / "a"))
    with pytest.raises(ConfigError, match="needs images of one size.*data.original.resize"):
        decode_dataset(mixed, OriginalView(), budget_gb=1.0)
    # a size check that sampled only images of the common size: the odd one (c0/img_9, index 2) is still refused
    first = tuple(to_uint8_tensor(mixed[0][0]).shape[-2:])
    monkeypatch.setattr(tensor_loader, "dataset_image_sizes", lambda dataset: [first])
    with pytest.raises(ConfigError, match=r"needs images of one size: training image 2 is \(20, 50\), others \(40, 30\)"):
        decode_dataset(mixed, OriginalView(), budget_gb=1.0)
    monkeypatch.undo()
    images, _ = decode_dataset(mixed, OriginalView(resize=28, center_crop=24), budget_gb=1.0)  # the stated rule
    assert images.shape == (len(mixed), 3, 24, 24)
    assert torch.equal(images[-1], OriginalView(resize=28, center_crop=24)(to_uint8_tensor(mixed[len(mixed) - 1][0])))


@pytest.mark.parametrize(("num_bytes", "shown"), [(3_072_000, "3.1 MB (0.0031 GB)"), (999, "1.0 kB (0.0000010 GB)"),
                                                  (314_000_000_000, "310 GB (310 GB)"), (0, "0 B (0 GB)")])
def test_sizes_are_shown_to_two_significant_digits(num_bytes: int, shown: str) -> None:
    assert tensor_loader.format_size(num_bytes) == shown


def test_memory_need_is_checked_before_the_run_folder_from_headers(tmp_path: Path) -> None:
    from solo_equimod.config.schema import validate
    from solo_equimod.data.checks import check_pretrain_data
    from solo_equimod.data.datasets import build_dataset
    from tests.conftest import tiny_pretrain_cfg

    root = write_image_folder(tmp_path / "train", classes=2, per_class=5, size=(40, 30))  # 10 x 3 x 40 x 30 = 36,000 B
    cfg = validate(tiny_pretrain_cfg("simclr", tmp_path, **{"data.dataset": "custom", "data.train_path": str(root),
                                                   "data.format": "tensor", "data.tensor_budget_gb": 3e-5,
                                                   "optimizer.batch_size": 2}))
    train = build_dataset("custom", str(root), "train")
    with pytest.raises(ConfigError, match=re.escape("(10 images of 40x30) needs 36 kB (0.000036 GB) as uint8 tensors, "
                                                    "over data.tensor_budget_gb=3e-05 (30 kB (0.000030 GB))")):
        check_pretrain_data(cfg, train, None)
    cfg.data.tensor_budget_gb = 3.6e-5  # exactly the need: accepted
    check_pretrain_data(cfg, train, None)


def test_truncated_image_is_named_or_skipped_when_decoded(tmp_path: Path) -> None:
    from PIL import Image

    from solo_equimod.data.datasets import build_dataset
    from solo_equimod.data.images import CorruptImageError

    root = write_image_folder(tmp_path / "train", classes=1, per_class=3, size=(16, 16))
    bad = truncate_as_jpeg(root / "c0" / "img_1.png")
    with pytest.raises(CorruptImageError, match=re.escape(repr(str(bad))) + ".*truncated"):
        decode_dataset(build_dataset("custom", str(root), "train"), OriginalView(), budget_gb=1.0)
    skipping = build_dataset("custom", str(root), "train", skip_corrupt=True)
    with pytest.warns(UserWarning, match=re.escape(repr(str(bad)))):
        images, _ = decode_dataset(skipping, OriginalView(), budget_gb=1.0)
    files = [root / "c0" / name for name in ("img_0.png", "img_1.jpg", "img_2.png")]  # ImageFolder's sorted order
    expected = [to_uint8_tensor(Image.open(files[i]).convert("RGB")) for i in (0, 2, 2)]  # the next readable one
    assert torch.equal(images, torch.stack(expected))
