"""`python -m solo_equimod.data.factors3d OUT_DIR ...`: write the factor bench in 3DIEBench's layout."""

from __future__ import annotations

import argparse

import solo_equimod.data.factors3d as factors3d
from solo_equimod.data.factors3d.dataset import IMAGE_SIZE, NUM_VIEWS, OBJECTS_PER_CLASS
from solo_equimod.data.factors3d.layout import write_layout
from solo_equimod.data.factors3d.render import SHAPES
from solo_equimod.errors import config_errors_exit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solo_equimod.data.factors3d",
                                     description=(factors3d.__doc__ or "").split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--objects-per-class", type=int, nargs=2, metavar=("TRAIN", "VAL"),
                        default=(OBJECTS_PER_CLASS["train"], OBJECTS_PER_CLASS["val"]))
    parser.add_argument("--views", type=int, default=NUM_VIEWS)
    parser.add_argument("--size", type=int, default=IMAGE_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty folder, replacing files "
                        "of the same names")
    args = parser.parse_args(argv)
    train, val = args.objects_per_class
    with config_errors_exit():
        out = write_layout(args.out_dir, {"train": train, "val": val}, args.views, args.size, args.seed,
                           args.overwrite)
    print(f"wrote {len(SHAPES) * (train + val)} objects x {args.views} views ({args.size} px) to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
