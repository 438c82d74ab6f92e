"""What the 3DIEBench tree check costs when a split is built (`FolderObjects`: one directory listing
per object, plus a .npy header per latent file when there is no `all_latents_<split>.npy`).

3DIEBench has 41,920 train and 10,552 val objects of 50 views (an `image_k.jpg` and a `latent_k.npy`
each: 5.2 M files). This writes a fraction of that tree with stub files (every image the same small
JPEG, every latent the same 7-value .npy: the check lists folders and reads headers, it never decodes
pixels), times building both splits, with and without the all_latents files (the published layout has
them), and extrapolates linearly in the number of objects to the full tree. The files are in the page
cache (just written): a cold disk is slower.

    nice python benchmarks/scan_3diebench.py --fraction 0.05
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from solo_equimod.data.views3d import LATENT_NAMES, FolderObjects
from solo_equimod.errors import config_errors_exit
from solo_equimod.run.atomic import refuse_existing, write_json

REPO = Path(__file__).resolve().parents[1]
OBJECTS = {"train": 41_920, "val": 10_552}  # the published splits (SIE's data README)
VIEWS, SYNSETS = 50, 55


def npy_bytes(value: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, value)
    return buf.getvalue()


def write_stub_tree(root: Path, objects: dict[str, int]) -> int:
    """3DIEBench's layout with `objects` per split over 55 synsets; returns the number of files written."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(buf, format="JPEG")
    jpeg, latent = buf.getvalue(), npy_bytes(np.zeros(len(LATENT_NAMES)))
    files = 0
    for split, count in objects.items():
        entries = [f"{1000 + i % SYNSETS:08d}/{split}_{i:06d}" for i in range(count)]
        for entry in entries:
            folder = root / entry
            folder.mkdir(parents=True)
            for k in range(VIEWS):
                (folder / f"image_{k}.jpg").write_bytes(jpeg)
                (folder / f"latent_{k}.npy").write_bytes(latent)
        files += 2 * VIEWS * count
        np.save(root / f"{split}_images.npy", np.array([f"/{e}/" for e in entries]))
        np.save(root / f"all_latents_{split}.npy", np.zeros((count * VIEWS, len(LATENT_NAMES))))
    return files


def time_build(root: Path) -> float:
    start = time.perf_counter()
    for split in OBJECTS:
        FolderObjects(root, split)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fraction", type=float, default=0.05, help="of 3DIEBench's objects to write (0, 1]")
    parser.add_argument("--repeats", type=int, default=3, help="timed builds per layout; the fastest is kept")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/scan_3diebench.json")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    with config_errors_exit():
        refuse_existing([args.out], args.overwrite)
        objects = {split: max(1, round(count * args.fraction)) for split, count in OBJECTS.items()}
        scale = sum(OBJECTS.values()) / sum(objects.values())
        root = Path(tempfile.mkdtemp(prefix="scan_3diebench_"))
        try:
            start = time.perf_counter()
            files = write_stub_tree(root, objects)
            written_s = time.perf_counter() - start
            with_all = min(time_build(root) for _ in range(args.repeats))
            for split in OBJECTS:
                os.remove(root / f"all_latents_{split}.npy")
            without_all = min(time_build(root) for _ in range(args.repeats))
        finally:
            shutil.rmtree(root)
    result = {
        "what": "FolderObjects(root, 'train') + FolderObjects(root, 'val'): the tree check at construction",
        "machine": f"2-core {platform.machine()} CPU (shared), {platform.system()}, page cache warm",
        "command": "nice python benchmarks/scan_3diebench.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "objects_written": objects, "views": VIEWS, "files_written": files, "write_s": round(written_s, 1),
        "fraction": round(1 / scale, 4),
        "measured_s": {"with_all_latents": round(with_all, 3), "without_all_latents": round(without_all, 3)},
        "full_3diebench_s_extrapolated": {"with_all_latents": round(with_all * scale, 1),
                                          "without_all_latents": round(without_all * scale, 1)},
    }
    print(json.dumps(result, indent=2))
    write_json(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
