"""Load a pretraining checkpoint back into its method (config, weights, objectives' statistics),
save a slim one (a torch file, or a safetensors file that cannot carry code: the config as JSON in
its metadata), and scan a run folder for the checkpoint `auto_resume` continues from."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from solo_equimod.config.saved_configs import pin_saved_config
from solo_equimod.errors import ConfigError
from solo_equimod.methods import METHODS, BaseMethod
from solo_equimod.run import atomic
from solo_equimod.run.safe_load import UnsafeCheckpointError, load_checkpoint_file, read_weights


def load_method(path: str | Path, map_location: str = "cpu") -> BaseMethod:
    """Rebuild the method a checkpoint was trained with, from the resolved config it carries: an
    older config keeps the defaults it was trained with (`config.saved_configs.pin_saved_config`), and weights
    from before objectives existed are read as their objectives'."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    ckpt = read_checkpoint(path, map_location)
    cfg = (ckpt.get("hyper_parameters") or {}).get("cfg") if isinstance(ckpt, dict) else None
    if cfg is None or "state_dict" not in ckpt:
        raise ConfigError(f"{path} is not a solo-equimod pretraining checkpoint (no 'cfg' hyper-parameters or "
                          f"state_dict)")
    method = cfg.get("method")
    if method not in METHODS:
        raise ConfigError(f"{path} was trained with method {method!r}, which this version does not know")
    model = METHODS[method](pin_saved_config(cfg))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


SAFETENSORS_CONFIG = "solo_equimod_config"  # the metadata key of a safetensors export's config (JSON)


def read_checkpoint(path: Path, map_location: str = "cpu") -> Any:
    """A checkpoint's {"hyper_parameters": {"cfg"}, "state_dict"}: a torch file loaded with
    weights_only=True (pickled code is refused, naming the file), or a safetensors export."""
    if path.suffix != ".safetensors":
        return load_checkpoint_file(path, map_location)
    from safetensors import safe_open

    state = read_weights(path)  # a pickle under this name is refused
    with safe_open(str(path), framework="pt") as f:
        config = (f.metadata() or {}).get(SAFETENSORS_CONFIG)
    return {} if config is None else {"hyper_parameters": {"cfg": json.loads(config)}, "state_dict": state}


def is_own_checkpoint(path: str | Path) -> bool:
    """Whether `path` is a file this library wrote (its config inside), not weights from elsewhere."""
    path = Path(path)
    if not path.is_file():
        return False
    ckpt = read_checkpoint(path) if path.suffix == ".safetensors" else load_checkpoint_file(path, mmap=True)
    return isinstance(ckpt, dict) and isinstance((ckpt.get("hyper_parameters") or {}).get("cfg"), dict)


def save_method(model: BaseMethod, path: str | Path, half: bool = False) -> Path:
    """Slim checkpoint (config + weights + objectives' statistics, no optimiser state) that
    `load_method` reads; written atomically so a crash never leaves a half-written file. With
    `half`, learnable parameters are stored in fp16 while buffers (BatchNorm, objectives' statistics
    such as EquiMod's parameter normalisation) stay fp32, so they are exact; `load_method` casts back to fp32."""
    params = {name for name, _ in model.named_parameters()}
    state = {k: (v.half() if half and k in params and v.is_floating_point() else v).clone()
             for k, v in model.state_dict().items()}
    cfg = OmegaConf.to_container(model.cfg, resolve=True)
    if Path(path).suffix == ".safetensors":  # tensors and a JSON config only: nothing that could run code
        from safetensors.torch import save

        data = save({k: v.contiguous() for k, v in state.items()}, metadata={SAFETENSORS_CONFIG: json.dumps(cfg)})
        return atomic.write_bytes(path, data)
    return atomic.torch_save({"hyper_parameters": {"cfg": cfg}, "state_dict": state}, path)


# keys that define what a run trains; a checkpoint that differs in one of them belongs to another run
RESUME_KEYS = ("method", "backbone", "method_kwargs", "objectives", "augmentations", "data.dataset", "data.train_path",
               "data.val_path", "data.num_classes", "data.synthetic_size", "data.original", "optimizer", "scheduler",
               "max_epochs", "max_steps", "limit_train_batches", "seed")


def _select(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = cfg.get(part) if isinstance(cfg, dict) else None
    return cfg


def differing_keys(found: Any, cfg: DictConfig) -> list[str]:
    """The RESUME_KEYS on which a stored config (a plain dict) and `cfg` differ."""
    wanted = OmegaConf.to_container(cfg, resolve=True)
    return [k for k in RESUME_KEYS if _select(found, k) != _select(wanted, k)]


def scan_checkpoints(run_dir: str | Path, cfg: DictConfig) -> tuple[Optional[Path], dict[Path, str]]:
    """Among `run_dir/*.ckpt` and `run_dir/steps/*.ckpt`: the readable one with the highest
    (global_step, epoch) whose config matches `cfg` on RESUME_KEYS, and every file skipped with
    the reason (`unreadable`, `unsafe` or `foreign`). Files are loaded with weights_only=True, so a
    crafted file is refused without running its code."""
    best: tuple[tuple[int, int, bool], Path] | None = None
    skipped: dict[Path, str] = {}
    for path in sorted([*Path(run_dir).glob("*.ckpt"), *Path(run_dir).glob("steps/*.ckpt")]):
        try:  # mmap: reads the counters and config without loading every tensor
            ckpt = load_checkpoint_file(path, mmap=True)
            found = OmegaConf.to_container(pin_saved_config(ckpt["hyper_parameters"]["cfg"]), resolve=True)
            # at equal counts a named file beats last.ckpt (its link or copy): the log folder names it
            key = (int(ckpt["global_step"]), int(ckpt["epoch"]), path.name != "last.ckpt")
        except Exception as err:  # truncated, crafted, or not a Lightning checkpoint
            skipped[path] = "unsafe" if isinstance(err, UnsafeCheckpointError) else "unreadable"
            warnings.warn(f"auto_resume: skipping {path}: {skipped[path]} ({err.__class__.__name__}: {err})")
            continue
        differ = differing_keys(found, cfg)
        if differ:
            skipped[path] = "foreign"
            warnings.warn(f"auto_resume: skipping {path}: trained with different {', '.join(differ)}")
            continue
        if best is None or key > best[0]:
            best = (key, path)
    return (None if best is None else best[1]), skipped
