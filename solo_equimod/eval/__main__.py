"""Offline evaluation of any pretraining checkpoint, or of a backbone trained elsewhere:

    python -m solo_equimod.eval COMMAND CHECKPOINT [key=value ...]
    python -m solo_equimod.eval COMMAND timm:NAME|torchvision:NAME [weights=FILE] [augmentations=cifar/simclr] data.*
    python -m solo_equimod.eval COMMAND SOLO_LEARN_OR_LIGHTLY.ckpt backbone=torchvision:NAME data.dataset=...

(weights: a state dict in safetensors or torch format, a solo-learn or a lightly checkpoint, read by
their key layout without unpickling code; solo_equimod/eval/any_backbone.py)

COMMAND is one of
  knn           weighted cosine kNN top-1/top-5 (keys: k, temperature)     -> knn_<dataset>-<ckpt>.json
  linear        linear probe, Sec. 3.2.1 as main_linear.py (keys: max_epochs;
                augment=false: the fast feature-caching variant)         -> linear_<dataset>-<ckpt>.json
  equivariance  Eq. 5 / Eq. 6 per augmentation, checkpoints with EquiMod      -> equivariance_<dataset>-<ckpt>.{json,csv,png}
  sensitivity   representation shift and parameter-probe R^2, any method  -> sensitivity_<dataset>-<ckpt>.json

SIE's measures (datasets of renderings: 3diebench, factors3d; keys: parts, max_objects, max_epochs, ...):
  classification  linear probe top-1 on one view per object, per part      -> classification_<dataset>-<ckpt>.{json,png}
  rotation        R^2 of an MLP regressing quat(R1^-1 R2) from two views     -> rotation_<dataset>-<ckpt>.{json,png}
  color           R^2 of the same MLP regressing the floor/spot hue deltas   -> color_<dataset>-<ckpt>.{json,png}
  pre             predictor's nearest-neighbour rotation error, 3 modes      -> pre_<dataset>-<ckpt>.{json,png}
  mrr             MRR and H@1/2/5/10 of the predictions among an object's views -> mrr_<dataset>-<ckpt>.{json,png}

Reports go next to the checkpoint (<ckpt>: its file name without .ckpt); an existing report is refused
before anything is computed unless overwrite=true. `data.*` keys default
to the checkpoint's pretraining data; override them to evaluate elsewhere, e.g.

    python -m solo_equimod.eval equivariance trained_models/simclr_equimod-custom/last.ckpt \\
        data.dataset=custom data.train_path=/data/c10/train data.val_path=/data/c10/val max_images=2000
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

from omegaconf import OmegaConf

from solo_equimod.errors import ConfigError, report_config_error


def _commands() -> dict[str, Callable[[Any], dict[str, Any]]]:
    from solo_equimod.eval.equivariance import run_equivariance
    from solo_equimod.eval.knn import run_knn
    from solo_equimod.eval.linear import run_linear
    from solo_equimod.eval.prediction3d import run_prediction
    from solo_equimod.eval.probes3d import run_probe
    from solo_equimod.eval.sensitivity import run_sensitivity

    sie = {kind: functools.partial(run_probe, kind) for kind in ("classification", "rotation", "color")}
    sie.update({kind: functools.partial(run_prediction, kind) for kind in ("pre", "mrr")})
    return {"knn": run_knn, "linear": run_linear, "equivariance": run_equivariance, "sensitivity": run_sensitivity,
            **sie}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = ("knn", "linear", "equivariance", "sensitivity", "classification", "rotation", "color", "pre", "mrr")
    if len(argv) < 2 or argv[0] not in commands or "=" in argv[1]:
        print(__doc__, file=sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"error: expected COMMAND ({', '.join(commands)}) then a checkpoint path, got {argv[:2]}",
                  file=sys.stderr)
        return 2
    try:
        cfg = OmegaConf.to_container(OmegaConf.from_dotlist(argv[2:]))
        cfg["pretrained_feature_extractor"] = argv[1]
        result = _commands()[argv[0]](cfg)
    except ConfigError as err:  # a configuration mistake: one line on stderr, exit status 2; others keep a traceback
        return report_config_error(err)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
