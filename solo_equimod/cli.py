"""The commands: `solo-equimod-pretrain` and `solo-equimod-linear` (console entry points of the
installed package; `main_pretrain.py` and `main_linear.py` in a checkout are the same commands).

`--config-name` names a shipped recipe (`byol_equimod`, `imagenet/byol_equimod`; solo_equimod.shipped)
unless `--config-path` gives a folder of one's own, as with Hydra alone. The config is composed once
before Hydra runs the task, so that a mistake on the command line (an unknown key, a wrong type, an
unknown config) is reported like any configuration error: one `error: ...` line naming the closest
valid keys, exit status 2, no traceback; Hydra would print its own message and exit 1 instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import hydra
from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser  # the parser of hydra.main, not re-declared here
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

# the commands' components: importing them registers their declarations with the configuration
import solo_equimod.eval.linear  # noqa: F401  (the linear schema; through it the methods and objectives)
from solo_equimod.config.hydra_schemas import declaration_at, register_schemas
from solo_equimod.errors import ConfigError, config_errors_exit
from solo_equimod.shipped import KINDS, resolve
from solo_equimod.suggest import did_you_mean


def _pretrain_task(cfg: DictConfig) -> None:
    from solo_equimod.run.training import pretrain  # imported here: `--help` and config errors need no Lightning

    with config_errors_exit():
        pretrain(cfg)


def _linear_task(cfg: DictConfig) -> None:
    from solo_equimod.eval.linear import run_linear

    with config_errors_exit():
        print(json.dumps(run_linear(cfg), indent=2))


def pretrain_main(argv: Sequence[str] | None = None, script_dir: Path | None = None) -> None:
    """`solo-equimod-pretrain --config-name NAME [key=value ...]`: pretrain a method."""
    _main("pretrain", _pretrain_task, argv, script_dir)


def linear_main(argv: Sequence[str] | None = None, script_dir: Path | None = None) -> None:
    """`solo-equimod-linear --config-name NAME pretrained_feature_extractor=CKPT [key=value ...]`: a linear probe."""
    _main("linear", _linear_task, argv, script_dir)


def _main(kind: str, task: Callable[[DictConfig], None], argv: Sequence[str] | None, script_dir: Path | None) -> None:
    """Find the config, compose it once to report mistakes as ConfigErrors, then hand over to Hydra
    with `--config-path` absolute (Hydra would read a relative one from this module's package)."""
    args = list(sys.argv[1:] if argv is None else argv)
    given = get_args_parser().parse_args(args)  # Hydra's own flags, so that we read the line as it will
    runs = not (given.help or given.hydra_help or given.info or given.shell_completion or given.multirun
                or given.experimental_rerun)
    register_schemas()
    with config_errors_exit():
        if given.config_name is None and given.config_path is None:
            if runs:
                raise ConfigError(f"no config: give --config-name NAME, e.g. --config-name "
                                  f"{'byol_equimod' if kind == 'pretrain' else 'linear'} (python -m solo_equimod "
                                  f"lists the shipped {KINDS[kind]} configs), or --config-path DIR --config-name NAME")
            config_dir, name = None, None
        elif given.config_path is None:
            config_dir, name = resolve(kind, given.config_name)
        else:
            config_dir, name = _own_config(Path(given.config_path), given.config_name, script_dir)
        if config_dir is not None and runs and given.config_dir is None:  # --config-dir: Hydra's search path only
            _check_composes(kind, config_dir, name, given.overrides)
    located = ["--config-path", str(config_dir)] + (["--config-name", name] if name else []) if config_dir else []
    sys.argv = [sys.argv[0], *args, *located]  # given twice, Hydra takes the last
    hydra.main(version_base="1.3", config_path=None, config_name=None)(task)()


def _own_config(path: Path, name: str | None, script_dir: Path | None) -> tuple[Path, str | None]:
    """`--config-path` (relative: from the current folder, else from the script's folder, as before) and
    its `--config-name`, which must be a file there."""
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, *([script_dir / path] if script_dir else [])]
    folder = next((c.resolve() for c in candidates if c.is_dir()), None)
    if folder is None:
        raise ConfigError(f"--config-path {path}: no such folder (a relative path is read from the current folder)")
    if name is None:
        return folder, None
    stem = name[:-len(".yaml")] if name.endswith(".yaml") else name
    if not (folder / f"{stem}.yaml").is_file():
        present = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(f"--config-name {name}: no {stem}.yaml in {folder}; {did_you_mean(stem, present)}"
                          f"the configs there are: {', '.join(present) or 'none'}")
    return folder, stem


def _compose(config_dir: Path, name: str | None, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def _check_composes(kind: str, config_dir: Path, name: str | None, overrides: list[str]) -> None:
    """Compose as Hydra will; a failure becomes a ConfigError that explains the override at fault."""
    try:
        cfg = _compose(config_dir, name, overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(_explain(kind, config_dir, name, overrides, err)) from None
    for override in OverridesParser.create().parse_overrides(overrides):  # `+key=...` adds even keys the schema lacks
        if override.is_add() or override.is_force_add():
            message = _unknown_key(kind, config_dir, override, cfg.get("method"))
            if message:
                raise ConfigError(message)


def _explain(kind: str, config_dir: Path, name: str | None, overrides: list[str], err: Exception) -> str:
    """The first override that cannot apply, as Hydra applies them in order: a key the schema lacks
    (the closest valid keys and all keys of its section; `+` cannot add it either), or a valid key
    absent from this config (add it with `+`). Otherwise Hydra's own message, on one line."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as bad:
        return f"cannot read the override {bad.override!r}: {_one_line(bad)} (key=value, +key=value, ~key)"
    try:
        base = OmegaConf.to_container(_compose(config_dir, name, []), resolve=False)
    except (HydraException, OmegaConfBaseException):
        return _one_line(err)
    for override in parsed:
        unknown = _unknown_key(kind, config_dir, override, base.get("method"))
        if unknown:
            return unknown
        key = override.key_or_group
        if not _is_value(config_dir, override) or _present(base, key) or override.is_add() or override.is_force_add():
            continue
        action = "there is nothing to remove" if override.is_delete() else f"to add it, write +{override.input_line}"
        return f"{key} is not in the config {name!r}: {action}"
    return _one_line(err)


def _unknown_key(kind: str, config_dir: Path, override: Override, method: Any) -> str | None:
    """The message for an override of a key that the schema lacks (None when it has it): the closest
    valid keys and all those of its section, from the declarations."""
    if not _is_value(config_dir, override):
        return None
    key = override.key_or_group
    missing = declaration_at(kind, key, method)
    if missing is None:
        return None
    section, valid = missing
    where = f"under {section}" if section else "at the top level"
    unmatched = key.split(".")[section.count(".") + 1 if section else 0]
    return (f"{key} is not a setting; {did_you_mean(unmatched, valid, f'{section}.' if section else '')}"
            f"the valid keys {where} are: {', '.join(valid)}")


def _is_value(config_dir: Path, override: Override) -> bool:
    """An override of a config value, not of Hydra's settings nor a config group (`augmentations=simclr`
    picks a file: a folder of configs or a stored group)."""
    key = override.key_or_group
    return not (override.is_hydra_override() or override.package is not None or (config_dir / key).is_dir()
                or key in ConfigStore.instance().repo)


def _present(tree: Any, key: str) -> bool:
    """Whether the dotted `key` is in the plain container `tree` (a `???` value counts as present)."""
    for part in key.split("."):
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
        else:
            return False
    return True


def _one_line(err: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line messages, the error's and its causes', without the indented
    detail lines and doc links, on one line."""
    lines: list[str] = []
    cause: BaseException | None = err
    while cause is not None:
        lines += [line.strip() for line in str(cause).splitlines() if line.strip() and
                  not line.startswith((" ", "\t", "See http")) and line.strip() not in lines]
        cause = cause.__cause__
    return ": ".join(lines) or type(err).__name__
