"""The settings reference, generated from the declarations: one Markdown table per method's
`method_kwargs`, per objective, for an `augmentations` entry and for the rest of the schema.

    python -m solo_equimod.reference                 # every table
    python -m solo_equimod.reference equimod byol    # the tables of these names
"""

from __future__ import annotations

import sys

from solo_equimod.augment.policy import AugmentationSettings
from solo_equimod.config.schema import PretrainConfig
from solo_equimod.config.settings import Settings, settings_table
from solo_equimod.errors import ConfigError, report_config_error
from solo_equimod.methods import BASE_METHODS
from solo_equimod.objectives import OBJECTIVES


def reference_sections() -> dict[str, tuple[str, type[Settings], str]]:
    """Name -> (title, declaration, key prefix), in the order the reference lists them."""
    sections: dict[str, tuple[str, type[Settings], str]] = {
        "pretrain": ("Pretraining config", PretrainConfig, ""),
        "augmentations": ("An `augmentations` entry", AugmentationSettings, "augmentations[i]"),
    }
    sections.update({name: (f"Method `{name}`", cls.SETTINGS, "method_kwargs") for name, cls in BASE_METHODS.items()})
    sections.update({name: (f"Objective `{name}`", cls.SETTINGS, f"objectives.{name}")
                     for name, cls in OBJECTIVES.items()})
    return sections


def reference(names: list[str] | None = None) -> str:
    """The Markdown reference of the named sections (all when `names` is empty)."""
    sections = reference_sections()
    unknown = [name for name in names or [] if name not in sections]
    if unknown:
        raise ConfigError(f"no settings named {unknown[0]!r}; valid: {', '.join(sections)}")
    chosen = names or list(sections)
    return "\n\n".join(f"## {sections[n][0]}\n\n{settings_table(sections[n][1], sections[n][2])}" for n in chosen)


def main(argv: list[str] | None = None) -> int:
    try:
        print(reference(sys.argv[1:] if argv is None else argv))
    except ConfigError as err:
        return report_config_error(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
