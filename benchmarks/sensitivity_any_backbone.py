"""The sensitivity report of a backbone from elsewhere next to one this library trained, on the
CIFAR-10 subset: a timm ResNet-18 at random init (`timm:resnet18`, no weights) and SimCLR+EquiMod
pretrained here (tiny_cnn, the `cifar/simclr_equimod` recipe at a CPU budget). Both are measured by
`python -m solo_equimod.eval sensitivity` with the same policy (cifar/simclr), images and seed.

    nice python benchmarks/sensitivity_any_backbone.py [--epochs 3] [--max-images 500]
    python benchmarks/plot_sensitivity_any_backbone.py      # the figure, from the results file

Writes benchmarks/results/sensitivity_any_backbone/results.json (the two reports, the command lines
and the machine); checkpoints and run logs go to --work (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.eval.__main__ import main as eval_main
from solo_equimod.run.atomic import write_json
from solo_equimod.run.training import pretrain

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "sensitivity_any_backbone"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/cifar10-subset", help="relative to the repository")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-images", type=int, default=500)
    parser.add_argument("--work", type=Path, default=None, help="checkpoints and logs (default: a temporary folder)")
    parser.add_argument("--trained", type=Path, default=None, help="a checkpoint of this recipe pretrained before "
                        "(skips the pretraining)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sensitivity_any_backbone-"))
    data = (REPO / args.data).resolve()
    pretrain_overrides = [
        "data.dataset=custom", f"data.train_path={data / 'train'}", f"data.val_path={data / 'val'}",
        "backbone.name=tiny_cnn", "+backbone.kwargs.width=32", "method_kwargs.proj_hidden_dim=512",
        "objectives.equimod.proj_hidden_dim=512", "optimizer.batch_size=128", f"max_epochs={args.epochs}",
        "scheduler.warmup_epochs=1", "precision=32-true", "accelerator=cpu", "devices=1", "data.num_workers=2",
        f"checkpoint.dir={work}", "seed=0"]
    register_schemas()
    with initialize_config_dir(str(REPO / "scripts" / "pretrain" / "cifar"), version_base="1.3"):
        cfg = compose(config_name="simclr_equimod", overrides=pretrain_overrides)
    start = time.perf_counter()
    ckpt = args.trained or pretrain(cfg)
    pretrain_s = None if args.trained else round(time.perf_counter() - start, 1)
    common = ["data.dataset=custom", f"data.train_path={data / 'train'}", f"data.val_path={data / 'val'}",
              f"max_images={args.max_images}", "num_workers=2", "seed=0", "overwrite=true"]
    runs = {"timm:resnet18 (random init)": ["timm:resnet18", "augmentations=cifar/simclr"],
            "simclr+equimod (trained here)": [str(ckpt)]}
    reports = {}
    for label, target in runs.items():
        folder = work / label.split(" ")[0].replace(":", "_")
        argv = ["sensitivity", *target, *common, f"output_dir={folder}"]
        if eval_main(argv) != 0:
            raise SystemExit(f"sensitivity failed for {label}")
        reports[label] = json.loads(next(folder.glob("sensitivity_*.json")).read_text())
        shown = [a.replace(str(data), args.data).replace(str(work), "WORK") for a in argv]
        reports[label]["command"] = "python -m solo_equimod.eval " + " ".join(shown)
        reports[label]["checkpoint"] = reports[label]["checkpoint"].replace(str(work), "WORK")
    write_json({"machine": f"{platform.machine()} CPU, {len(os.sched_getaffinity(0))} cores",
                "pretrain": {"config": "cifar/simclr_equimod", "overrides": [
                    o.replace(str(data), args.data).replace(str(work), "WORK") for o in pretrain_overrides],
                    "seconds": pretrain_s},
                "reports": reports}, OUT / "results.json")
    print(f"wrote {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
