"""Images/second of pretraining input pipelines, side by side in one run (not a test).

Rows, all with the same batch size and the same number of worker threads/processes:
  dali-plain-rrc     DALI: decode, fn.random_resized_crop x2 + flip, normalise, original view;
                     returns no parameters (DALI samples its windows internally)
  dali-params-rrc    ours with a crop+flip-only policy: the same work, but the windows are drawn
                     explicitly and returned as Appendix A.1 vectors -> the cost of returning them
  dali-params-full   ours with the full policy of the config (jitter in random order, gray, ...)
  torchvision-full   ParamPretrainTransform in a torch DataLoader, full policy
  tensor-full        data.format=tensor: the images decoded once into one uint8 tensor on --device,
                     batches augmented there by the batched applier (augment/batched_applier.py), full
                     policy, torch intra-op threads = --workers (tensor-full-1thread: one thread)
All DALI rows read files through the same Python feeder (which also draws the parameters, unused
by the plain row), so only the augmentation differs.

    python benchmarks/dali_throughput.py [--dataset cifar|imagenet] [--workers 2] [--rounds 3] [--epochs 1]
        [--device cpu|cuda] [--json out.json] [--generated --limit N] [--tensor-images N]

cifar: --data (default: ../shared/data/cifar10-subset/train from the repository, PNG 32x32) when present
(and not --generated), else
--limit generated images (default 2048); imagenet: --limit (default 256) generated 500x375 JPEGs
with the ImageNet BYOL augmentations (crop 224, original 256/224). The rows alternate round by
round (ABAB), and the ratios docs/benchmarks/loaders.md quotes (RATIOS) are taken per round, between rows that
ran back to back, with their median and range. Prints Markdown tables (also written to --out when given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from solo_equimod.augment.pipeline import OriginalView, ParamPretrainTransform
from solo_equimod.augment.policy import ViewPolicy, layout_for, policies_from_config
from solo_equimod.data.dali.build import build_dali_pretrain_loader
from solo_equimod.data.dali.feeder import Feeder, PipelineSpec
from solo_equimod.data.dali.files import list_image_folder
from solo_equimod.data.dali.loader import to_torch
from solo_equimod.data.epochs import epoch_plan
from solo_equimod.data.pretrain import PretrainDataset
from solo_equimod.data.tensor_loader import TensorPretrainLoader, decode_dataset
from solo_equimod.errors import config_errors_exit
from solo_equimod.run.atomic import refuse_existing

REPO = Path(__file__).resolve().parents[1]
CIFAR_SUBSET = REPO.parent / "shared/data/cifar10-subset/train"  # the CIFAR-10 subset beside the checkout
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _synthetic_folder(root: Path, count: int, size: tuple[int, int], fmt: str) -> Path:
    rng = np.random.default_rng(0)
    for k in range(count):
        cls = root / f"class_{k % 4}"
        cls.mkdir(parents=True, exist_ok=True)
        yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
        img = np.stack([xx * 255 / size[1], yy * 255 / size[0], rng.random() * (xx + yy) * 255 / sum(size)], -1)
        img = (img + rng.normal(0, 25, img.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(cls / f"{k:05d}.{fmt}", quality=90)
    return root


def _plain_dali_epochs(root: str, policies: Sequence[ViewPolicy], original: OriginalView, batch_size: int,
                       threads: int) -> Callable[[], int]:
    """The plain pipeline: DALI's own random_resized_crop; the feeder's parameter draws go unused."""
    from nvidia.dali import fn, pipeline_def, types

    from solo_equimod.augment.dali_ops import make_original

    files, _, _ = list_image_folder(root)
    spec = PipelineSpec(tuple(policies), layout_for(policies), MEAN, STD, original, True, batch_size, threads, "cpu", None)
    feeder = Feeder(files, spec, seed=0, skip_corrupt=False)

    @pipeline_def(batch_size=batch_size, num_threads=threads, device_id=None, seed=0, prefetch_queue_depth=2)
    def plain():  # type: ignore[no-untyped-def]
        sources = fn.external_source(source=feeder, num_outputs=len(feeder.names), batch=True, cycle="raise")
        fed = dict(zip(feeder.names, sources))
        image = fn.decoders.image(fed["encoded"], device="cpu", output_type=types.RGB, adjust_orientation=False)
        views = []
        for p in policies:
            view = fn.random_resized_crop(
                image, size=[p.crop_size] * 2, random_area=[p.crop_min_scale, p.crop_max_scale],
                random_aspect_ratio=list(p.crop_ratio), antialias=True, interp_type=types.INTERP_LINEAR,
            )
            views.append(fn.crop_mirror_normalize(
                view, mirror=fn.random.coin_flip(probability=p.flip_prob), mean=[255 * m for m in MEAN],
                std=[255 * s for s in STD], output_layout="CHW", dtype=types.FLOAT,
            ))
        original_feed = {k.removeprefix("original_"): v for k, v in fed.items() if k.startswith("original_")}
        return (fed["index"], *views, make_original(image, original, original_feed, MEAN, STD))

    pipe = plain()
    pipe.build()
    epoch = [0]

    def run_epoch() -> int:
        feeder.begin(epoch_plan(len(files), epoch[0], 0, 0, 1, batch_size, True))
        epoch[0] += 1
        seen = 0
        while True:
            try:
                outputs = pipe.run()
            except StopIteration:
                pipe.reset()
                return seen
            seen += len(to_torch(outputs[0], torch.device("cpu"), "index"))
            for k, out in enumerate(outputs[1:]):
                to_torch(out, torch.device("cpu"), f"output {k}")

    return run_epoch


def _loop(batches: Iterable) -> int:  # type: ignore[type-arg]
    return sum(len(batch["index"]) for batch in batches)


# the ratios quoted in docs/benchmarks/loaders.md: (numerator row, denominator row)
RATIOS = {"tensor-full-1thread / torchvision-full": ("tensor-full-1thread", "torchvision-full"),
          "tensor-full / torchvision-full": ("tensor-full", "torchvision-full"),
          "dali-params-rrc / dali-plain-rrc": ("dali-params-rrc", "dali-plain-rrc"),
          "dali-params-full / torchvision-full": ("dali-params-full", "torchvision-full")}


def interleaved(rows: dict[str, Callable[[], int]], rounds: int, epochs: int) -> dict[str, list[float]]:
    """Images/s of every row per round: one warm-up epoch each (pipeline build, worker start, page
    cache), then `rounds` rounds in which each row in turn runs `epochs` epochs (ABAB...), so that the
    machine's load drifts over all rows alike."""
    for run in rows.values():
        run()
    speeds: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(rounds):
        for name, run in rows.items():
            start = time.perf_counter()
            images = sum(run() for _ in range(epochs))
            speeds[name].append(images / (time.perf_counter() - start))
    return speeds


def paired_ratios(speeds: dict[str, list[float]]) -> dict[str, dict[str, float | list[float]]]:
    """Each RATIOS entry per round (the two rows of one round ran back to back), its median and range."""
    out: dict[str, dict[str, float | list[float]]] = {}
    for label, (num, den) in RATIOS.items():
        if num in speeds and den in speeds:
            per_round = [a / b for a, b in zip(speeds[num], speeds[den])]
            out[label] = {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round),
                          "rounds": per_round}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["cifar", "imagenet"], default="cifar")
    parser.add_argument("--workers", type=int, default=2, help="DALI threads = DataLoader worker processes")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of each row per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (ABAB); medians and ranges over them")
    parser.add_argument("--limit", type=int, default=None,
                        help="images to generate (default: cifar 2048, imagenet 256)")
    parser.add_argument("--data", type=Path, default=CIFAR_SUBSET,
                        help="cifar: an ImageFolder of CIFAR-size images (default: the CIFAR-10 subset beside the repo)")
    parser.add_argument("--generated", action="store_true", help="cifar: generated images even when the subset is on disk")
    parser.add_argument("--tensor-images", type=int, default=None,
                        help="tensor rows: the decoded set tiled to this many images, so that a fast device's epoch "
                             "is long enough to time (the applier's speed does not depend on which images)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="DALI gpu / tensor loader device")
    parser.add_argument("--json", type=Path, default=None, help="also write {row: images/s} here")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = parser.parse_args()
    with config_errors_exit():  # before measuring: never replace a file this run did not write
        refuse_existing([p for p in (args.out, args.json) if p is not None], args.overwrite)
    warnings.filterwarnings("ignore", message=".*is not used.*")  # the plain pipeline ignores the draws

    tmp = tempfile.TemporaryDirectory()
    if args.dataset == "cifar":
        config = REPO / "scripts/pretrain/cifar/augmentations/simclr.yaml"
        original = OriginalView()
        if args.data.is_dir() and not args.generated:
            root = args.data
        else:
            root = _synthetic_folder(Path(tmp.name), args.limit or 2048, (32, 32), "png")
    else:
        config = REPO / "scripts/pretrain/imagenet/augmentations/byol.yaml"
        original = OriginalView(resize=256, center_crop=224)
        root = _synthetic_folder(Path(tmp.name), args.limit or 256, (375, 500), "jpg")
    policies = policies_from_config(OmegaConf.to_container(OmegaConf.load(config)))  # type: ignore[arg-type]
    crop_flip = [ViewPolicy(crop_size=p.crop_size, flip_prob=p.flip_prob, jitter_prob=0.0, gray_prob=0.0) for p in policies]
    count = len(list_image_folder(str(root))[0])

    dali_device = "gpu" if args.device == "cuda" else "cpu"

    def ours(pols: Sequence[ViewPolicy]) -> Callable[[], int]:
        loader = build_dali_pretrain_loader(str(root), pols, MEAN, STD, original, args.batch_size, num_threads=args.workers,
                                            device=dali_device)
        return lambda: _loop(loader)

    images, targets = decode_dataset(ImageFolder(str(root)), original, budget_gb=16.0)
    if args.tensor_images is not None:
        tiles = -(-args.tensor_images // len(images))
        images, targets = images.repeat(tiles, 1, 1, 1)[: args.tensor_images], targets.repeat(tiles)[: args.tensor_images]
    tensor_loader = TensorPretrainLoader(images.to(args.device), targets, policies, MEAN, STD, original, True, None,
                                         args.batch_size)

    def tensor_epoch(threads: int) -> Callable[[], int]:
        def run() -> int:
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                count = _loop(tensor_loader)
                if args.device == "cuda":
                    torch.cuda.synchronize()
                return count
            finally:
                torch.set_num_threads(before)
        return run

    transform = ParamPretrainTransform(policies, MEAN, STD, original)
    dataset = PretrainDataset(ImageFolder(str(root)), transform)
    torch_loader = DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers, drop_last=True,
        persistent_workers=True,
    )
    rows = {
        "dali-plain-rrc": _plain_dali_epochs(str(root), crop_flip, original, args.batch_size, args.workers),
        "dali-params-rrc": ours(crop_flip),
        "dali-params-full": ours(policies),
        "torchvision-full": lambda: _loop(torch_loader),
        "tensor-full": tensor_epoch(args.workers),
        "tensor-full-1thread": tensor_epoch(1),
    }
    per_round = interleaved(rows, args.rounds, args.epochs)
    speeds = {name: statistics.median(values) for name, values in per_round.items()}
    ratios = paired_ratios(per_round)

    lines = [
        f"dataset: {args.dataset} ({os.path.relpath(root, REPO) if root == args.data else 'generated'}, {count} images), "
        f"augmentations {config.relative_to(REPO)}, "
        f"batch {args.batch_size}, {args.workers} workers, {args.rounds} interleaved rounds of {args.epochs} epoch(s) "
        f"per row after 1 warm-up"
        + (f", tensor rows on the set tiled to {len(images)} images" if args.tensor_images else ""),
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "",
        f"device: {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""),
        "",
        f"| pipeline | images/s (median) | rounds (min-max) | views/s ({len(policies)} per image) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {value:.0f} | {min(per_round[name]):.0f}-{max(per_round[name]):.0f} | "
              f"{value * len(policies):.0f} |" for name, value in speeds.items()]
    lines += ["", "| ratio (paired per round) | median | min-max |", "|---|---:|---:|"]
    lines += [f"| {label} | {r['median']:.2f}x | {r['min']:.2f}-{r['max']:.2f}x |" for label, r in ratios.items()]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    if args.json is not None:
        args.json.write_text(json.dumps({"dataset": args.dataset, "device": args.device, "images": count,
                                          "tensor_images": len(images), "views_per_image": len(policies),
                                          "images_per_s": speeds, "images_per_s_rounds": per_round,
                                          "ratios": ratios, "rounds": args.rounds, "epochs_per_round": args.epochs},
                                         indent=1))
    tmp.cleanup()


if __name__ == "__main__":
    main()
