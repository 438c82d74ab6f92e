"""`python -m solo_equimod.zoo list | download NAME | verify NAME | export CKPT ...`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from solo_equimod.errors import ConfigError, report_config_error
from solo_equimod.zoo.export import export_checkpoint
from solo_equimod.zoo.fetch import ZooError, sha256_of
from solo_equimod.zoo.load import resolve
from solo_equimod.zoo.manifest import add_to_manifest, default_manifest_path, load_manifest, refuse_existing_entry


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m solo_equimod.zoo", description=__doc__)
    parser.add_argument("--manifest", type=Path, default=None,
                        help="default: $SOLO_EQUIMOD_ZOO_MANIFEST or the package's solo_equimod/zoo/manifest.json")
    parser.add_argument("--cache", type=Path, default=None, help="default: $SOLO_EQUIMOD_CACHE or ~/.cache/solo_equimod")
    sub = parser.add_subparsers(dest="command", required=True)
    lst = sub.add_parser("list", help="the published checkpoints")
    lst.add_argument("--dataset", default=None)
    lst.add_argument("--names", action="store_true", help="print names only, one a line")
    for cmd, text in (("download", "fetch into the cache (verified); prints the local path"),
                      ("verify", "fetch if needed, then re-check size and sha256")):
        sub.add_parser(cmd, help=text).add_argument("name")
    exp = sub.add_parser("export", help="slim weights + manifest entry from a checkpoint and its eval JSON")
    exp.add_argument("checkpoint", type=Path)
    exp.add_argument("--eval-json", type=Path, required=True, help="e.g. linear_<dataset>-last.json of main_linear.py")
    exp.add_argument("--name", required=True)
    exp.add_argument("--out", type=Path, required=True, help="where the slim weights file is written (.safetensors: "
                     "tensors and the config as metadata, nothing pickled; else a torch file)")
    exp.add_argument("--url", required=True, help="where the file will be served (a path relative to the manifest is fine)")
    exp.add_argument("--metrics-command", required=True, help="the command that produced --eval-json")
    exp.add_argument("--pretrain-command", default="")
    exp.add_argument("--notes", default="")
    exp.add_argument("--fp32", action="store_true", help="keep fp32 parameters (default: fp16, restored to fp32 on load)")
    exp.add_argument("--write", action="store_true", help="add the entry to --manifest instead of printing it")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing --out file, and with --write an "
                     "entry of the same --name")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            for entry in load_manifest(args.manifest).values():
                if args.dataset in (None, entry.dataset):
                    metrics = ", ".join(f"{k}={v:.1f}" for k, v in entry.metrics.items())  # as the docs
                    print(entry.name if args.names else
                          f"{entry.name}\t{entry.method}\t{entry.dataset}\t{entry.backbone}\t{entry.epochs} ep\t"
                          f"{metrics}\t{entry.size / 1e6:.1f} MB")
        elif args.command == "download":
            print(resolve(args.name, args.cache, args.manifest))
        elif args.command == "verify":
            entry = load_manifest(args.manifest).get(args.name)
            if entry is None:
                raise ConfigError(f"no zoo entry {args.name!r}; zoo names: "
                                  f"{', '.join(sorted(load_manifest(args.manifest))) or 'none'}")
            path = resolve(args.name, args.cache, args.manifest)  # fetch re-checks a cached file
            print(f"OK {args.name}: {path} sha256 {sha256_of(path)} ({entry.size} bytes)")
        else:
            manifest = args.manifest or default_manifest_path()
            if args.write:  # before the weights are written
                refuse_existing_entry(args.name, manifest, args.overwrite)
            entry = export_checkpoint(args.checkpoint, args.eval_json, args.name, args.out, args.url,
                                      args.metrics_command, args.pretrain_command, args.notes, half=not args.fp32,
                                      overwrite=args.overwrite)
            if args.write:
                add_to_manifest(entry, manifest, args.overwrite)
                print(f"added {entry.name} to {manifest} ({entry.size} bytes, sha256 {entry.sha256})")
            else:
                print(json.dumps(entry.to_json(), indent=2))
    except ConfigError as err:  # a usage mistake (an unknown name, an existing output): exit status 2
        return report_config_error(err)
    except (ZooError, ValueError, FileNotFoundError) as err:  # a download, a checksum, a manifest file
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
