"""The checks that need the dataset index (not the pixels), run right after it is built and before
any file is written: a batch larger than the data, validation classes that are not the training
classes, a `data.num_classes` the data contradicts, files DALI would not read, and images of mixed
sizes without a Resize + CenterCrop original view. Each error names the key or path and the fix."""

from __future__ import annotations

from collections import Counter

from omegaconf import DictConfig
from torch.utils.data import Dataset

from solo_equimod.config import ConfigError
from solo_equimod.data.describe import dataset_image_sizes, num_classes_of
from solo_equimod.world import planned_processes


def _classes(dataset: Dataset) -> list[str] | None:
    classes = getattr(dataset, "classes", None)
    return None if classes is None else [str(c) for c in classes]


def check_splits(cfg: DictConfig, train_set: Dataset, val_set: Dataset | None) -> None:
    """Validation classes must be the training classes (same names, same order, so label k means the
    same class)."""
    train, val = _classes(train_set), _classes(val_set) if val_set is not None else None
    if train is not None and val is not None and train != val:
        only_train, only_val = sorted(set(train) - set(val)), sorted(set(val) - set(train))
        detail = f"only in train: {only_train[:5]}, only in val: {only_val[:5]}" if only_train or only_val \
            else "same names in another order"
        raise ConfigError(f"data.val_path={cfg.data.val_path} has other classes than data.train_path="
                          f"{cfg.data.train_path} ({detail}); point both at splits of the same dataset")


def check_pretrain_data(cfg: DictConfig, train_set: Dataset, val_set: Dataset | None) -> None:
    """`check_splits`, plus a given `data.num_classes` against the data's, the batch size against the
    dataset size, DALI's file types, data.format=tensor's memory need (`tensor_loader.stored_size`), and
    a seeded sample of up to 256 image headers: unreadable or 16-bit files are named (or skipped with
    `data.skip_corrupt`), mixed sizes need `data.original.*`."""
    check_splits(cfg, train_set, val_set)
    found = num_classes_of(train_set)
    if cfg.data.num_classes is not None and cfg.data.num_classes != found:
        raise ConfigError(f"data.num_classes={cfg.data.num_classes} but the training data has {found} classes; "
                          f"set data.num_classes={found} or null (read from the data)")
    world = planned_processes(cfg)
    size = len(train_set)  # type: ignore[arg-type]
    if cfg.optimizer.batch_size * world > size:
        where = f"data.train_path={cfg.data.train_path}" if cfg.data.train_path else f"data.dataset={cfg.data.dataset}"
        raise ConfigError(f"optimizer.batch_size={cfg.optimizer.batch_size} (x {world} process(es)) is larger than "
                          f"the {size} training images of {where}: the incomplete last batch is dropped, so no step "
                          f"would run; use optimizer.batch_size <= {size // world}")
    if cfg.data.format == "dali":
        from solo_equimod.data.dali.files import IMAGE_EXTENSIONS

        ignored = [path for path, _ in getattr(train_set, "samples", []) if not path.lower().endswith(IMAGE_EXTENSIONS)]
        if ignored:
            raise ConfigError(f"data.format=dali reads only {'/'.join(IMAGE_EXTENSIONS)} files; {len(ignored)} "
                              f"file(s) of data.train_path would be ignored (e.g. {ignored[0]}): convert them or use "
                              f"data.format=image_folder")
    if cfg.data.format == "tensor":
        from solo_equimod.data.tensor_loader import stored_size

        stored_size(train_set, cfg.data.original.center_crop, cfg.data.tensor_budget_gb)
    sizes = Counter(dataset_image_sizes(train_set, seed=cfg.seed))  # headers only; names unreadable files
    if cfg.data.original.center_crop is None and len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for (h, w), _ in sizes.most_common(3))
        raise ConfigError(f"data.train_path={cfg.data.train_path} has images of mixed sizes ({shown}, ...), but "
                          f"the original image (and validation) is used as is: set data.original.resize and "
                          f"data.original.center_crop (e.g. 256 and 224) so every image has one size")
