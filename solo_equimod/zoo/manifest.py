"""The zoo manifest (`solo_equimod/zoo/manifest.json`, shipped as package data with the in-repo
weights): one entry per checkpoint this project trained."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from solo_equimod.errors import ConfigError
from solo_equimod.run import atomic

MANIFEST_ENV = "SOLO_EQUIMOD_ZOO_MANIFEST"
REQUIRED = ("name", "method", "dataset", "backbone", "epochs", "config", "metrics", "metrics_command", "url",
            "sha256", "size")


@dataclass
class ZooEntry:
    """A published checkpoint: what it is, how it was measured, and where its bytes are.

    `url` is http(s)://, file:// or a path; a relative path is relative to the manifest's folder."""

    name: str
    method: str
    dataset: str
    backbone: str
    epochs: int
    config: dict[str, Any]
    metrics: dict[str, float]
    metrics_command: str
    url: str
    sha256: str
    size: int
    pretrain_command: str = ""
    notes: str = ""
    base_dir: Path = field(default=Path("."), repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("base_dir")
        return data


def default_manifest_path() -> Path:
    """`$SOLO_EQUIMOD_ZOO_MANIFEST`, else the manifest installed with this package (editable or not)."""
    return Path(os.environ.get(MANIFEST_ENV) or Path(__file__).with_name("manifest.json"))


def _entry(raw: dict[str, Any], path: Path) -> ZooEntry:
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise ValueError(f"{path}: entry {raw.get('name', '?')!r} lacks {', '.join(missing)}")
    name = str(raw["name"])
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):  # it names the cached file
        raise ValueError(f"{path}: entry name {name!r} must be a plain file name (no '/', '\\' or '..')")
    unknown = set(raw) - (set(ZooEntry.__dataclass_fields__) - {"base_dir"})
    if unknown:
        raise ValueError(f"{path}: entry {raw['name']!r} has unknown field(s) {sorted(unknown)}")
    return ZooEntry(**raw, base_dir=path.parent)


def load_manifest(path: str | Path | None = None) -> dict[str, ZooEntry]:
    """Entries by name. Bad JSON, a wrong shape, a missing or unknown field or a duplicate name is a
    ValueError naming the file (and the entry)."""
    path = Path(path) if path is not None else default_manifest_path()
    if not path.is_file():
        raise FileNotFoundError(f"zoo manifest {path} does not exist; pass --manifest or set ${MANIFEST_ENV}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"zoo manifest {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        found = type(data).__name__ if not isinstance(data, dict) else \
            ("no 'models' key" if "models" not in data else f"'models' of type {type(data['models']).__name__}")
        raise ValueError(f"zoo manifest {path} must be a JSON object with a 'models' list, found {found}")
    entries: dict[str, ZooEntry] = {}
    for i, raw in enumerate(data["models"]):
        if not isinstance(raw, dict):
            raise ValueError(f"zoo manifest {path}: models[{i}] must be an object, found {type(raw).__name__}")
        entry = _entry(raw, path)
        if entry.name in entries:
            raise ValueError(f"{path}: duplicate entry name {entry.name!r}")
        entries[entry.name] = entry
    return entries


def refuse_existing_entry(name: str, path: str | Path, overwrite: bool) -> None:
    """A ConfigError if the manifest at `path` already has an entry `name`, unless `overwrite`: an
    export adds entries, it replaces one only when told to."""
    path = Path(path)
    if not overwrite and path.is_file() and any(m.get("name") == name for m in json.loads(path.read_text())["models"]):
        raise ConfigError(f"{path} already has an entry {name!r}; refusing to replace it: choose another --name or "
                          f"pass --overwrite")


def add_to_manifest(entry: ZooEntry, path: str | Path, overwrite: bool = False) -> None:
    """Insert `entry` in the manifest at `path` (created if absent), written atomically; an entry of
    the same name is replaced only with `overwrite` (else a ConfigError, nothing written)."""
    path = Path(path)
    refuse_existing_entry(entry.name, path, overwrite)
    data = json.loads(path.read_text()) if path.is_file() else {"version": 1, "models": []}
    data["models"] = [m for m in data["models"] if m["name"] != entry.name] + [entry.to_json()]
    atomic.write_text(path, json.dumps(data, indent=2) + "\n")
