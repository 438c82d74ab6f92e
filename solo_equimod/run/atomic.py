"""Files written so that a crash never leaves a half-written one: a temporary file beside the
target (same filesystem, so the rename is atomic), flushed to disk, then renamed over it; on any
failure the temporary file is removed and the old target stays as it was. `create_exclusive`
writes a file only if no other process has: the one atomic "first to create it wins"."""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
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


def create_exclusive(path: str | Path, data: bytes) -> bool:
    """Create `path` holding `data`, unless it exists: True if this call created it, False if it
    existed (then nothing of this call's is left). Among processes racing to create the same file
    exactly one gets True, and the file is never seen half-written: the data goes to a temporary
    file of this call's own (a unique name beside `path`), which is then hard-linked to `path`, an
    operation that fails when the name exists. On a filesystem without hard links, `path` is opened
    with O_EXCL instead (still exclusive, but readable while it is written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:  # the umask's permissions, as `open(path, "wb")` would give
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (some network and FUSE filesystems)
            try:
                with open(path, "xb") as f:
                    f.write(data)
            except FileExistsError:
                return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


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
