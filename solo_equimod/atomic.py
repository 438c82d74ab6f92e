"""Files written so that a crash never leaves a half-written one: a temporary file beside the
target (same filesystem, so the rename is atomic), flushed to disk, then renamed over it; on any
failure the temporary file is removed and the old target stays as it was."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping, Sequence

import torch

from solo_equimod.errors import ConfigError


def replace_with(path: str | Path, write: Callable[[BinaryIO], Any], tmp_name: str | None = None) -> Path:
    """Write `path` through `write(file)` on a temporary file beside it (`tmp_name`, default
    `<name>.tmp`), renamed over `path` only once written and flushed to disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(tmp_name or path.name + ".tmp")  # never matched by `*.ckpt`, so never resumed from
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    return replace_with(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def torch_save(obj: Any, path: str | Path) -> Path:
    return replace_with(path, lambda f: torch.save(obj, f))


def write_json(obj: Any, path: str | Path) -> Path:
    return write_bytes(path, json.dumps(obj, indent=2).encode())


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Rows of equal keys -> CSV with a header."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return write_bytes(path, buf.getvalue().encode())


def refuse_existing(paths: Sequence[str | Path], overwrite: bool, flag: str = "--overwrite") -> None:
    """A ConfigError naming the first of `paths` that exists, unless `overwrite`: a command never
    replaces a file it did not create unless told to. Called before anything is written."""
    if overwrite:
        return
    existing = [Path(p) for p in paths if Path(p).exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ConfigError(f"{existing[0]} already exists{more}; refusing to overwrite it: remove it, choose another "
                          f"output, or pass {flag}")
