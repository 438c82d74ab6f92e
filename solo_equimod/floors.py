"""The floors of the package, lowest first: a module may import from its own floor and the floors
below it, never from a floor above (function-level imports included), and no two modules may import
each other at module level. `benchmarks/import_graph.py` reports against this table and
tests/test_import_graph.py enforces it.

- base: the library's exception types and small helpers every floor uses;
- config: the settings machinery, the schema and its checks (it learns of methods and objectives
  through `config.components.COMPONENTS`, which the upper floors fill);
- components: the pieces a method is built from (augmentation, losses, backbones, optimisers);
- data: datasets and loaders; objectives; methods; run: the life of one training run;
- eval, zoo: what reads finished runs; entry: the command line and the public facades.
"""

from __future__ import annotations

PACKAGE = "solo_equimod"

# floor name -> the top-level modules and packages of solo_equimod on it
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("__init__", "errors", "suggest", "precision", "floors")),
    ("config", ("config", "shipped")),
    ("components", ("augment", "losses", "backbones", "optim", "head_batching")),
    ("data", ("data",)),
    ("objectives", ("objectives",)),
    ("methods", ("methods",)),
    ("run", ("run",)),
    ("eval", ("eval", "zoo")),
    ("entry", ("cli", "entry", "__main__", "reference", "blocks")),
)


def floor_of(module: str) -> int:
    """The floor index (0: lowest) of a dotted module name of the package; a ValueError for a module
    no floor lists, so a new top-level module must be given its floor here."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        raise ValueError(f"{module} is not a module of {PACKAGE}")
    top = parts[1] if len(parts) > 1 else "__init__"
    for index, (_, members) in enumerate(FLOORS):
        if top in members:
            return index
    raise ValueError(f"{module}: its top-level name {top!r} is on no floor of solo_equimod.floors.FLOORS")
