"""The pretraining run behind `main_pretrain.py`: config -> data, method, trainer -> checkpoints."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig

from solo_equimod.config.preflight import check_pretrain_config
from solo_equimod.config.schema import validate
from solo_equimod.data.batch import PipelineRequests
from solo_equimod.data.checks import check_data_config, check_pretrain_data
from solo_equimod.data.describe import num_classes_of
from solo_equimod.data.pretrain import PretrainDataModule
from solo_equimod.methods import METHODS
from solo_equimod.objectives.compose import pipeline_requests
from solo_equimod.run.callbacks import AtomicCheckpointIO, NonFiniteLossGuard, StepCheckpoint
from solo_equimod.run.progress import progress_callback
from solo_equimod.run.run_dir import RunPlan, claim_run_dir, plan_run
from solo_equimod.run.speed import apply_speed_settings


def _loggers(cfg: DictConfig, run_dir: Path, csv_version: str = "csv") -> list[Logger]:
    loggers: list[Logger] = [
        CSVLogger(str(run_dir), name="", version=csv_version),
        TensorBoardLogger(str(run_dir), name="", version="tensorboard"),
    ]
    if cfg.wandb.enabled:
        from lightning.pytorch.loggers import WandbLogger

        loggers.append(WandbLogger(name=cfg.name, project=cfg.wandb.project, entity=cfg.wandb.entity,
                                   offline=cfg.wandb.offline))
    return loggers


def global_batch_line(batch_size: int, devices: int, nodes: int) -> str:
    """`optimizer.batch_size` is per process (as solo-learn); papers quote the global batch."""
    return (f"global batch {batch_size * devices * nodes} = optimizer.batch_size {batch_size} per process x "
            f"{devices} device(s) x {nodes} node(s)")


def _absolute_data_paths(cfg: DictConfig) -> None:
    """Data paths as absolute folders: the saved config then names the data whatever the working
    directory, and `auto_resume` compares folders, not spellings."""
    for key in ("train_path", "val_path"):
        if cfg.data[key] is not None:
            cfg.data[key] = str(Path(cfg.data[key]).expanduser().resolve())


def check_before_reading(cfg: DictConfig) -> PipelineRequests:
    """Every check a validated pretraining config allows before a dataset is read: the declared settings
    and the components' checks (`config.preflight`), then the data against the objectives' requests,
    which it returns: what the data module is to produce."""
    check_pretrain_config(cfg)
    requests = pipeline_requests(cfg)
    check_data_config(cfg, requests)
    return requests


def pretrain(raw_cfg: DictConfig) -> Path:
    """Run one pretraining; returns the path of the last checkpoint (or of the run folder).

    Every check that the config allows runs before a dataset is read, and every check before the
    run folder is written (see `solo_equimod.run.run_dir` for the run-folder rule)."""
    cfg = validate(raw_cfg)
    requests = check_before_reading(cfg)
    run_dir = claim_run_dir(cfg)
    _absolute_data_paths(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = PretrainDataModule(cfg, requests)
    check_pretrain_data(cfg, datamodule.train_set, datamodule.val_set)
    datamodule.read_ahead()
    if cfg.data.num_classes is None:
        cfg.data.num_classes = num_classes_of(datamodule.train_set)
    model = METHODS[cfg.method](cfg)
    model.prepare_objectives(datamodule)
    apply_speed_settings(model, cfg)  # compile, channels_last: in place, the state_dict keys unchanged
    plan = plan_run(run_dir, cfg) if cfg.auto_resume.enabled else RunPlan(run_dir)

    callbacks: list[pl.Callback] = [progress_callback(), LearningRateMonitor(logging_interval="step"),
                                    NonFiniteLossGuard()]
    if cfg.checkpoint.enabled:
        # monitoring the step makes "the k best" the k newest; no version counter: last.ckpt is
        # always this run's newest checkpoint, never an older run's beside a `last-v1.ckpt`
        callbacks.append(ModelCheckpoint(dirpath=run_dir, filename="{epoch}-{step}", save_last=True, monitor="step",
                                         mode="max", save_top_k=cfg.checkpoint.keep_epochs,
                                         every_n_epochs=cfg.checkpoint.frequency, enable_version_counter=False))
        if cfg.checkpoint.every_n_steps != 0:
            callbacks.append(StepCheckpoint(run_dir, cfg.checkpoint.every_n_steps, cfg.checkpoint.keep_steps))
    trainer = pl.Trainer(
        max_epochs=cfg.max_epochs, max_steps=cfg.max_steps, accelerator=cfg.accelerator, devices=cfg.devices,
        num_nodes=cfg.num_nodes, strategy=cfg.strategy, precision=cfg.precision, sync_batchnorm=cfg.sync_batchnorm,
        logger=_loggers(cfg, run_dir, plan.csv_version), callbacks=callbacks, enable_checkpointing=cfg.checkpoint.enabled,
        limit_train_batches=cfg.limit_train_batches, limit_val_batches=cfg.limit_val_batches,
        log_every_n_steps=cfg.log_every_n_steps, deterministic=False, plugins=[AtomicCheckpointIO()],
        default_root_dir=str(run_dir),  # SLURM's pre-emption checkpoint (hpc_ckpt_N.ckpt) lands in the run folder
    )
    rank_zero_info(global_batch_line(cfg.optimizer.batch_size, trainer.num_devices, trainer.num_nodes))
    plan.apply(cfg)  # the first write of the run: the folder, config.yaml, skipped checkpoints renamed aside
    trainer.fit(model, datamodule=datamodule, ckpt_path=None if plan.resume is None else str(plan.resume),
                weights_only=True)
    last = run_dir / "last.ckpt"
    return last if last.is_file() else run_dir
