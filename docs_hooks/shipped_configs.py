"""MkDocs hook: `<!-- configs: NAME -->` in a page becomes the list of shipped pretraining configs
whose method or objectives include NAME, read from scripts/pretrain at build time."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

PRETRAIN = Path(__file__).resolve().parents[1] / "scripts" / "pretrain"
PLACEHOLDER = re.compile(r"<!-- configs: ([a-z_0-9]+) -->")
OBJECTIVE_DEFAULT = re.compile(r"^/objectives@objectives\.([a-z_0-9]+)$")


def components(config: Path) -> set[str]:
    """The method and objectives of a config, following its defaults list to sibling configs."""
    raw = yaml.safe_load(config.read_text()) or {}
    found = {raw["method"]} if "method" in raw else set()
    found |= set((raw.get("objectives") or {}))
    for entry in raw.get("defaults") or []:
        key = next(iter(entry)) if isinstance(entry, dict) else entry
        match = OBJECTIVE_DEFAULT.match(key)
        if match:
            found.add(match.group(1))
        elif isinstance(entry, str) and entry != "_self_" and not entry.startswith("/"):
            sibling = config.parent / f"{entry.removesuffix('.yaml')}.yaml"
            if sibling.is_file():
                found |= components(sibling)
    return {name for name in found if name}


def configs_with(name: str) -> str:
    rows = [f"- `{config.relative_to(PRETRAIN.parent.parent)}`" for config in sorted(PRETRAIN.glob("*/*.yaml"))
            if not config.name.startswith("_") and name in components(config)]
    if not rows:
        raise ValueError(f"<!-- configs: {name} -->: no shipped config uses {name!r}")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **_: object) -> str:
    return PLACEHOLDER.sub(lambda match: configs_with(match.group(1)), markdown)
