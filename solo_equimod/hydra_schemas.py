"""The configuration schemas as Hydra configs (`defaults: [pretrain_schema, _self_]`), so every key
can be overridden on the command line and a typo fails at composition with the key's name; each
objective's settings declaration as the config group `objectives` (a config that lists
`- /objectives@objectives.<name>: <name>` in its defaults has every setting of it typed and
overridable), and each method's as the group `method_kwargs` (`- /method_kwargs: <method>`).

`declaration_at` answers, from the same declarations, which keys exist where: the command line's
did-you-mean for a mistyped key (solo_equimod.cli)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping, Union

from hydra.core.config_store import ConfigStore

from solo_equimod.augment.policy import AugmentationSettings
from solo_equimod.config import PretrainConfig
from solo_equimod.eval.linear_config import LinearConfig
from solo_equimod.methods import METHODS
from solo_equimod.objectives import METHOD_ALIASES, OBJECTIVES

SCHEMAS: dict[str, type] = {"pretrain": PretrainConfig, "linear": LinearConfig}

# What a schema node is: a declaration (a dataclass), a mapping of names to declarations (the
# objectives), a list of one declaration (`("list", X)`), or None: a value or a free-form mapping.
Node = Union[type, Mapping[str, type], tuple[str, type], None]


def register_schemas() -> None:
    store = ConfigStore.instance()
    store.store(name="pretrain_schema", node=PretrainConfig)
    store.store(name="linear_schema", node=LinearConfig)
    for name, objective in OBJECTIVES.items():
        store.store(group="objectives", name=name, node=objective.SETTINGS)
    for name, method in METHODS.items():
        store.store(group="method_kwargs", name=name, node=method.SETTINGS)


def _entries(schema: type, field: str, method: Any) -> Node:
    """The declarations behind the pretraining schema's free-form fields, registered above: `objectives`
    holds objectives by name, `method_kwargs` the settings of `method` (an alias is its base method),
    `augmentations` a list of AugmentationSettings. None for any other field."""
    if schema is not PretrainConfig:
        return None
    if field == "objectives":
        return {name: objective.SETTINGS for name, objective in OBJECTIVES.items()}
    if field == "method_kwargs":
        base = METHOD_ALIASES.get(method, (method, ()))[0]
        return METHODS[base].SETTINGS if base in METHODS else None
    if field == "augmentations":
        return ("list", AugmentationSettings)
    return None


def declaration_at(kind: str, key: str, method: Any = None) -> tuple[str, list[str]] | None:
    """Whether the dotted `key` exists in the `kind` schema ("pretrain" or "linear"): None when it does
    (or lies below a free-form mapping such as `backbone.kwargs`), else (the section where it stops
    matching, "" for the top level; the valid keys there), from the dataclass fields."""
    schema = SCHEMAS[kind]
    node: Node = schema
    parts = key.split(".")
    for i, part in enumerate(parts):
        section = ".".join(parts[:i])
        if isinstance(node, tuple):  # a list of declarations: an index, then that entry's keys
            if not part.isdigit():
                return section, ["0", "1", "..."]
            node = node[1]
        elif isinstance(node, Mapping):
            if part not in node:
                return section, sorted(node)
            node = node[part]
        elif isinstance(node, type) and dataclasses.is_dataclass(node):
            names = [f.name for f in dataclasses.fields(node)]
            if part not in names:
                return section, names
            hint = typing.get_type_hints(node)[part]
            node = _entries(schema, part, method) if node is schema and i == 0 else None
            if node is None and isinstance(hint, type) and dataclasses.is_dataclass(hint):
                node = hint
        else:
            return None
    return None
