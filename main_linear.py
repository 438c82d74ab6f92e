"""Linear evaluation of a pretrained backbone:
`python main_linear.py --config-path scripts/linear/cifar --config-name linear.yaml pretrained_feature_extractor=PATH`."""

from __future__ import annotations

from solo_equimod.malloc import reexec_with_malloc_settings

if __name__ == "__main__":  # first, before torch: CPU steps linear in the batch (solo_equimod/malloc.py)
    reexec_with_malloc_settings()

import json

import hydra
from omegaconf import DictConfig

from solo_equimod.errors import config_errors_exit
from solo_equimod.eval.linear import run_linear
from solo_equimod.hydra_schemas import register_schemas

register_schemas()


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg: DictConfig) -> None:
    with config_errors_exit():  # a configuration mistake: one line on stderr, exit status 2
        print(json.dumps(run_linear(cfg), indent=2))


if __name__ == "__main__":
    main()
