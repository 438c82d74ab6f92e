"""The declarations the upper floors hand to the configuration, so the ground floor can check,
complete, pin and register the settings of methods and objectives without importing one.

Each component package fills its part of `COMPONENTS` when it is imported: `solo_equimod.methods` the
methods, `solo_equimod.objectives.compose` the objectives, the method aliases, the canonical form of a
config and the objectives' check, `solo_equimod.backbones` its pinned defaults and its check,
`solo_equimod.augment.policy` the augmentation entry and its check, `solo_equimod.eval.linear` the
linear-evaluation schema. Importing `solo_equimod.methods` (every command does) fills every table but
the evaluation schemas; reading the tables before that raises, naming that import, so a forgotten
import is an error instead of an empty list of methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from omegaconf import DictConfig

from solo_equimod.config.settings import Settings

Check = Callable[[DictConfig], None]


@dataclass
class Components:
    """What the upper floors declare. A method or objective class is read for its `SETTINGS`
    declaration and its `PINNED_BEFORE` (config version -> values of the keys that version introduced)."""

    methods: dict[str, Any] = field(default_factory=dict)  # name, aliases included -> method class
    objectives: dict[str, Any] = field(default_factory=dict)  # name -> objective class
    method_aliases: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # alias -> base, objectives
    canonical: Callable[[DictConfig], DictConfig] | None = None  # aliases and old spellings made canonical
    backbone_pinned_before: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    augmentation: type[Settings] | None = None  # the declaration of one `augmentations` entry
    schemas: dict[str, type] = field(default_factory=dict)  # a command's schema by kind, besides "pretrain"
    checks: dict[str, Check] = field(default_factory=dict)  # component -> its check of a validated config

    def require(self) -> Components:
        """These components, once the methods and objectives are registered; else a RuntimeError."""
        if not self.methods or self.canonical is None or self.augmentation is None:
            raise RuntimeError("no methods, objectives or augmentations are registered with solo_equimod.config: "
                               "import solo_equimod.methods first (every command does)")
        return self


COMPONENTS = Components()
