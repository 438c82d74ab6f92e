"""The run-folder rule: one `checkpoint.dir/name` folder holds one run, and is never clobbered.

- A `name` is one folder name inside `checkpoint.dir` (no `/`, `\\`, `..`, or absolute path).
- A new run needs a folder that does not exist yet (or is empty). If it already holds files and
  `auto_resume.enabled` is false, the run is refused before anything is written or read.
- With `auto_resume.enabled=true` the run continues the folder's run: from its newest checkpoint
  whose config matches on `checkpoints.RESUME_KEYS` (data included), or from scratch when that run
  left no checkpoint and its `config.yaml` matches. If the folder holds only checkpoints of another
  run (or a `config.yaml` that differs), it is refused, naming the differing keys.
- Checkpoints skipped while continuing (unreadable, crafted, or foreign) are renamed
  `<file>.skipped-<reason>`, so neither `auto_resume` nor an evaluation of `last.ckpt` picks them up.
- Nothing of an earlier run is deleted: `config.yaml` is written by the run that creates the folder
  only; each session logs to its own CSV folder (`csv`, `csv-resumed-<checkpoint>`, `csv-restarted`,
  with `-2`, `-3`, ... when that name is taken); `last.ckpt` is overwritten only by the run itself.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from solo_equimod import atomic
from solo_equimod.callbacks import link_checkpoint
from solo_equimod.checkpoints import differing_keys, scan_checkpoints
from solo_equimod.config import ConfigError
from solo_equimod.versions import pin_saved_config

CONFIG_FILE = "config.yaml"


class RunDirError(ValueError):
    """The run folder belongs to another run, or the run name is not a plain folder name."""


def run_dir_of(cfg: DictConfig) -> Path:
    """`checkpoint.dir/name`, after checking that `name` is one folder name (so the run cannot
    write outside `checkpoint.dir`)."""
    name = str(cfg.name)
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or Path(name).is_absolute():
        raise ConfigError(f"name={name!r}: the run name must be a single folder name inside checkpoint.dir "
                          f"(no '/', '\\\\', '..' or absolute path), e.g. name=simclr-cifar10")
    return Path(cfg.checkpoint.dir) / name


def claim_run_dir(cfg: DictConfig) -> Path:
    """The run folder, refused (RunDirError) if it holds an earlier run and `auto_resume.enabled` is
    false. Reads the folder's listing only; writes nothing. Processes other than global rank 0
    (DDP, SLURM tasks) find the folder rank 0 has just created, so only rank 0 decides."""
    run_dir = run_dir_of(cfg)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"checkpoint.dir/name = {run_dir} is a file, not a run folder; choose another name")
    held = sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []
    if held and not cfg.auto_resume.enabled and rank_zero_only.rank == 0:
        listed = ", ".join(held[:6]) + (", ..." if len(held) > 6 else "")
        raise RunDirError(
            f"run folder {run_dir} already holds a run ({listed}); nothing was written. To continue that run set "
            f"auto_resume.enabled=true; to start a new one choose a fresh name (name=...)")
    return run_dir


def _free_name(folder: Path, base: str) -> str:
    """`base`, or `base-2`, `base-3`, ... : the first that does not exist in `folder`."""
    name, n = base, 1
    while (folder / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


@dataclass
class RunPlan:
    """What a run does with its folder: resume from `resume` (None: start from scratch), rename
    the `skipped` checkpoints aside, and log to `csv_version`."""

    run_dir: Path
    resume: Optional[Path] = None
    skipped: dict[Path, str] = field(default_factory=dict)
    csv_version: str = "csv"

    def apply(self, cfg: DictConfig) -> None:
        """Create the folder, rename skipped checkpoints aside (a renamed `last.ckpt` is replaced by
        the checkpoint resumed from) and write `config.yaml` if absent (global rank 0 only: the
        other processes use the folder it prepares)."""
        if rank_zero_only.rank != 0:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for path, reason in self.skipped.items():
            aside = path.with_name(_free_name(path.parent, f"{path.name}.skipped-{reason}"))
            path.rename(aside)
            warnings.warn(f"auto_resume: renamed the {reason} checkpoint {path} to {aside.name}, so that it is "
                          f"neither resumed nor evaluated as this run's")
        last = self.run_dir / "last.ckpt"
        if self.resume is not None and not last.exists():
            link_checkpoint(self.resume, last)
        if not (self.run_dir / CONFIG_FILE).exists():  # atomic: other ranks may read it while it is written
            atomic.write_text(self.run_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))


def plan_run(run_dir: Path, cfg: DictConfig) -> RunPlan:
    """Decide how the run uses `run_dir` (see the module docstring); reads, never writes. Call it with
    the complete config (`data.num_classes` filled), after `claim_run_dir`."""
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return RunPlan(run_dir)
    resume, skipped = scan_checkpoints(run_dir, cfg)
    if resume is not None:
        return RunPlan(run_dir, resume, skipped, _free_name(run_dir, f"csv-resumed-{resume.stem}"))
    if rank_zero_only.rank != 0:  # rank 0 decides (and refuses) for every process
        return RunPlan(run_dir)
    foreign = [p.name for p, reason in skipped.items() if reason == "foreign"]
    config_file = run_dir / CONFIG_FILE
    differ = []
    if config_file.is_file():  # an older config.yaml is read with the defaults it was written against
        differ = differing_keys(OmegaConf.to_container(pin_saved_config(OmegaConf.load(config_file)), resolve=True), cfg)
    if foreign or differ:
        what = ([f"checkpoints of another run ({', '.join(foreign)})"] if foreign else []) + \
            ([f"a {CONFIG_FILE} that differs in {', '.join(differ)}"] if differ else [])
        raise RunDirError(f"auto_resume: run folder {run_dir} holds {' and '.join(what)} and no checkpoint of this "
                          f"run (warnings above say how each checkpoint differs); nothing was written. Choose a "
                          f"fresh name (name=...) for this run")
    return RunPlan(run_dir, None, skipped, _free_name(run_dir, "csv-restarted"))
