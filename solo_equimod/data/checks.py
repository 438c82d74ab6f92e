"""The data floor's checks, run before any file is written. `check_data_config`: what the loaders,
the augmentations and the objectives' requests allow, before any dataset is read. The others need the
dataset index (not the pixels) and run right after it is built: a batch larger than the data,
validation classes that are not the training classes, a `data.num_classes` the data contradicts,
files DALI would not read, and images of mixed sizes without a Resize + CenterCrop original view.
Each error names the key or path and the fix."""

from __future__ import annotations

from collections import Counter

from omegaconf import DictConfig
from torch.utils.data import Dataset

from solo_equimod.augment.policy import ViewPolicy, policies_from_config
from solo_equimod.config.choices import VIEW_DATASETS
from solo_equimod.config.world import planned_processes
from solo_equimod.data.batch import PipelineRequests
from solo_equimod.data.describe import dataset_image_sizes, num_classes_of
from solo_equimod.data.pretrain import FORMAT_INPUTS
from solo_equimod.errors import ConfigError


def check_data_config(cfg: DictConfig, requests: PipelineRequests) -> None:
    """A validated pretraining config's data against the rest: a dataset of renderings takes them
    unaugmented, the objectives' `requests` must be what `data.format` (or the renderings) can make,
    and data.format=dali needs DALI installed."""
    if cfg.data.dataset in VIEW_DATASETS:
        _check_renderings_unaugmented(cfg.data.dataset, policies_from_config(cfg.augmentations))
    _check_inputs(cfg, requests)
    if cfg.data.format == "dali":
        from solo_equimod.data.dali.guard import require_dali  # the import guard: DALI is an optional extra

        try:
            require_dali()
        except ImportError as err:
            raise ConfigError(f"data.format='dali' needs NVIDIA DALI, which is not installed: {err}") from None


def _check_inputs(cfg: DictConfig, requests: PipelineRequests) -> None:
    """The objectives' inputs against what this format and dataset can make."""
    dataset, data_format = cfg.data.dataset, cfg.data.format
    asked = sorted(requests.inputs) + (["extras"] if requests.extras else [])
    makes = frozenset() if dataset in VIEW_DATASETS else FORMAT_INPUTS[data_format]
    missing = [name for name in asked if name not in makes]
    if missing:
        which = "the views (renderings) only" if dataset in VIEW_DATASETS else ", ".join(["views", *sorted(makes)])
        source = f"data.dataset={dataset!r}" if dataset in VIEW_DATASETS else f"data.format={data_format!r}"
        extra_names = f" ({', '.join(sorted(requests.extras))})" if "extras" in missing else ""
        raise ConfigError(f"objectives {', '.join(cfg.objectives)} need {', '.join(missing)}{extra_names}, which "
                          f"{source} cannot make (it makes {which})"
                          + ("" if dataset in VIEW_DATASETS else "; use data.format=image_folder"))


def _check_renderings_unaugmented(dataset: str, policies: list[ViewPolicy]) -> None:
    """The views of a dataset of renderings are the renderings (SIE: Resize + Normalize only)."""
    for i, p in enumerate(policies):
        applied = [key for key, on in (("rrc.enabled", p.rrc_enabled), ("horizontal_flip.prob", p.flip_prob > 0),
                                       ("color_jitter.prob", p.jitter_prob > 0), ("grayscale.prob", p.gray_prob > 0),
                                       ("gaussian_blur.prob", p.blur_prob > 0), ("solarization.prob", p.solarize_prob > 0))
                   if on]
        if applied:
            raise ConfigError(f"augmentations (view {i}) apply {applied}, but data.dataset={dataset!r} shows renderings "
                              f"as they are (SIE: Resize + Normalize only); turn these off, e.g. with "
                              f"scripts/pretrain/factors3d/augmentations/none.yaml")


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
