"""Pretrain a method: `python main_pretrain.py --config-path scripts/pretrain/cifar --config-name byol_equimod.yaml`.

Any key can be overridden on the command line (`optimizer.lr=1.0 data.num_workers=2`)."""

from __future__ import annotations

from solo_equimod.malloc import reexec_with_malloc_settings

if __name__ == "__main__":  # first, before torch: CPU steps linear in the batch (solo_equimod/malloc.py)
    reexec_with_malloc_settings()

import hydra
from omegaconf import DictConfig

from solo_equimod.errors import config_errors_exit
from solo_equimod.hydra_schemas import register_schemas
from solo_equimod.training import pretrain

register_schemas()


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg: DictConfig) -> None:
    with config_errors_exit():  # a configuration mistake: one line on stderr, exit status 2
        pretrain(cfg)


if __name__ == "__main__":
    main()
