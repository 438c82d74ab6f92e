"""Shipped configs composed by name through Hydra, as the command line does."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from solo_equimod.config.hydra_schemas import register_schemas
from tests.conftest import REPO

PRETRAIN = REPO / "scripts" / "pretrain"


def compose_config(name: str) -> DictConfig:
    """`scripts/pretrain/<name>.yaml` as Hydra composes it for `main_pretrain.py`."""
    folder, config = name.split("/")
    register_schemas()
    with initialize_config_dir(str(PRETRAIN / folder), version_base="1.3"):
        return compose(config_name=config)
