"""The configuration schemas as Hydra configs (`defaults: [pretrain_schema, _self_]`), so every key
can be overridden on the command line and a typo fails at composition with the key's name; each
objective's settings declaration as the config group `objectives` (a config that lists
`- /objectives@objectives.<name>: <name>` in its defaults has every setting of it typed and
overridable), and each method's as the group `method_kwargs` (`- /method_kwargs: <method>`)."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from solo_equimod.config import PretrainConfig
from solo_equimod.eval.linear import LinearConfig
from solo_equimod.methods import METHODS
from solo_equimod.objectives import OBJECTIVES


def register_schemas() -> None:
    store = ConfigStore.instance()
    store.store(name="pretrain_schema", node=PretrainConfig)
    store.store(name="linear_schema", node=LinearConfig)
    for name, objective in OBJECTIVES.items():
        store.store(group="objectives", name=name, node=objective.SETTINGS)
    for name, method in METHODS.items():
        store.store(group="method_kwargs", name=name, node=method.SETTINGS)
