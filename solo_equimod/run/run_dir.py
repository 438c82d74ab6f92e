"""The run-folder rule: one `checkpoint.dir/name` folder holds one run, and is never clobbered.

- A `name` is one folder name inside `checkpoint.dir` (no `/`, `\\`, `..`, or absolute path).
- A new run needs a folder that does not exist yet (or is empty). If it already holds files and
  `auto_resume.enabled` is false, the run is refused before anything is written or read. The claim
  is atomic: a new run's first write creates `config.yaml` exclusively, so of two runs started at
  the same moment with the same `name` exactly one gets the folder and the other is refused with
  nothing of its own written.
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

from solo_equimod.config.saved_configs import pin_saved_config
from solo_equimod.errors import ConfigError
from solo_equimod.run import atomic
from solo_equimod.run.callbacks import free_name, link_checkpoint
from solo_equimod.run.checkpoints import differing_keys, scan_checkpoints

CONFIG_FILE = "config.yaml"


class RunDirError(ConfigError):
    """The run folder belongs to another run (a configuration mistake: the `name` is taken)."""


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
    false. Reads the folder's listing only; writes nothing: the early refusal, before any data is
    read. It cannot see a run started at the same moment; `RunPlan.apply` makes the claim itself,
    atomically. Processes other than global rank 0 (DDP, SLURM tasks) find the folder rank 0 has
    just created, so only rank 0 decides."""
    run_dir = run_dir_of(cfg)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"checkpoint.dir/name = {run_dir} is a file, not a run folder; choose another name")
    held = sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []
    if held and not cfg.auto_resume.enabled and rank_zero_only.rank == 0:
        raise _taken(run_dir, held)
    return run_dir


def _taken(run_dir: Path, held: list[str]) -> RunDirError:
    """The refusal of a run whose folder holds `held` (another run's files)."""
    listed = ", ".join(held[:6]) + (", ..." if len(held) > 6 else "")
    return RunDirError(
        f"run folder {run_dir} already holds a run ({listed}); nothing was written. To continue that run set "
        f"auto_resume.enabled=true; to start a new one choose a fresh name (name=...)")


@dataclass
class RunPlan:
    """What a run does with its folder: resume from `resume` (None: start from scratch), rename
    the `skipped` checkpoints aside, and log to `csv_version`."""

    run_dir: Path
    resume: Optional[Path] = None
    skipped: dict[Path, str] = field(default_factory=dict)
    csv_version: str = "csv"

    def apply(self, cfg: DictConfig) -> None:
        """The run's first write (global rank 0 only: the other processes use the folder it
        prepares): create the folder if needed, then `config.yaml` exclusively. With
        `auto_resume.enabled` false that is the claim of the folder: if another run created
        `config.yaml` first (e.g. one started at the same moment with the same `name`), this one is
        refused (RunDirError, as by `claim_run_dir`) having written nothing. With auto_resume an
        existing `config.yaml` is kept (`plan_run` compared it); then skipped checkpoints are
        renamed aside (a renamed `last.ckpt` is replaced by the checkpoint resumed from)."""
        if rank_zero_only.rank != 0:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        created = atomic.create_exclusive(self.run_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True).encode())
        if not created and not cfg.auto_resume.enabled:
            raise _taken(self.run_dir, sorted(p.name for p in self.run_dir.iterdir()))
        for path, reason in self.skipped.items():
            aside = path.with_name(free_name(path.parent, f"{path.name}.skipped-{reason}"))
            path.rename(aside)
            warnings.warn(f"auto_resume: renamed the {reason} checkpoint {path} to {aside.name}, so that it is "
                          f"neither resumed nor evaluated as this run's")
        last = self.run_dir / "last.ckpt"
        if self.resume is not None and not last.exists():
            link_checkpoint(self.resume, last)


def plan_run(run_dir: Path, cfg: DictConfig) -> RunPlan:
    """Decide how the run uses `run_dir` (see the module docstring); reads, never writes. Call it with
    the complete config (`data.num_classes` filled), after `claim_run_dir`."""
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return RunPlan(run_dir)
    resume, skipped = scan_checkpoints(run_dir, cfg)
    if resume is not None:
        return RunPlan(run_dir, resume, skipped, free_name(run_dir, f"csv-resumed-{resume.stem}"))
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
    return RunPlan(run_dir, None, skipped, free_name(run_dir, "csv-restarted"))
