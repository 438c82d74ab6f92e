"""MkDocs hook: `<!-- settings: NAME -->` in a page becomes the settings table of NAME (a method, an
objective, `pretrain` or `augmentations`), and `<!-- settings: all -->` the whole reference, both
rendered from the declarations by `solo_equimod.reference` at build time, so a page never holds a
copy that can go stale."""

from __future__ import annotations

import re

from solo_equimod.config.settings import settings_table
from solo_equimod.reference import reference, reference_sections

PLACEHOLDER = re.compile(r"<!-- settings: ([a-z_0-9]+) -->")


def settings_markdown(name: str) -> str:
    """The table of one declaration, or every table (headings one level below the page's)."""
    if name == "all":
        return reference().replace("\n## ", "\n### ").replace("## ", "### ", 1)
    sections = reference_sections()
    if name not in sections:
        raise ValueError(f"<!-- settings: {name} -->: no settings named {name!r}; valid: all, {', '.join(sections)}")
    _, declaration, prefix = sections[name]
    return settings_table(declaration, prefix)


def on_page_markdown(markdown: str, **_: object) -> str:
    return PLACEHOLDER.sub(lambda match: settings_markdown(match.group(1)), markdown)
