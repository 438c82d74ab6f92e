"""Settings declarations: every setting of a method, objective, loader or augmentation is declared
once, as a field of a `Settings` dataclass, with its type, default, valid range or choices, one line
of help and the paper section or official file its value comes from.

From that one declaration come the Hydra schema (the dataclass is a structured config, so a wrong
type or an unknown key fails at composition, naming the key), the checks run before a run folder is
claimed (`parse_settings`, `check_settings`), the saved config (completed with the defaults) and the
reference tables of the documentation (`settings_table`).

Why dataclasses and not pydantic: Hydra and OmegaConf take dataclasses as structured configs
natively (typed command-line overrides, interpolation, the saved YAML), so one class serves all four
uses without a second validation layer or another dependency.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from solo_equimod.errors import ConfigError

__all__ = ["Rule", "Settings", "check_settings", "parse_settings", "setting", "settings_table"]


@dataclass(frozen=True)
class Rule:
    """The values a setting accepts besides its type: bounds (inclusive `ge`/`le`, exclusive
    `gt`/`lt`) and a set of `choices`. Floats must also be finite. None passes (Optional settings)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] | None = None

    def allows(self, value: Any) -> bool:
        if value is None:
            return True
        if self.choices is not None:
            return value in self.choices
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                    and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))
        return True

    def describe(self) -> str:
        """What is valid, for messages and tables: `> 0`, `[0, 1]`, `one of: a, b`."""
        if self.choices is not None:
            return "one of: " + ", ".join(str(c) for c in self.choices)
        low = f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None else None
        high = f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None else None
        if low and high:
            return f"{low}, {high}"
        if low:
            return (">= " if low[0] == "[" else "> ") + low[1:]
        if high:
            return ("<= " if high[-1] == "]" else "< ") + high[:-1]
        return "any"


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def setting(default: Any, help: str, *, source: str = "", ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None, choices: tuple[Any, ...] | None = None) -> Any:
    """Declare one setting: a dataclass field with `default`, its `help` line, the `source` of the
    default (paper section or official file) and the `Rule` for its values."""
    metadata = {"help": help, "source": source, "rule": Rule(ge, gt, le, lt, tuple(choices) if choices else None)}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass
class Settings:
    """Base of a settings declaration. Subclasses declare fields with `setting(...)` and may
    override `check` for rules that involve other settings or the rest of the config."""

    def check(self, cfg: DictConfig) -> None:
        """Raise ConfigError when this group's values cannot work together or with `cfg`, the whole
        validated config. Called after every field passed its own rule, before anything is written."""


def _rule(field: dataclasses.Field) -> Rule:
    return field.metadata.get("rule", Rule())


def check_settings(settings: Settings, where: str, cfg: DictConfig | None = None) -> None:
    """Every field's rule, nested groups included, then (given the whole `cfg`) each group's `check`;
    the error names the full key (`where.field`), the value and what is valid."""
    for field in dataclasses.fields(settings):
        value, key = getattr(settings, field.name), f"{where}.{field.name}" if where else field.name
        if isinstance(value, Settings):
            check_settings(value, key, cfg)
        elif not _rule(field).allows(value):
            help_line = field.metadata.get("help", "")
            raise ConfigError(f"{key}={value!r} is invalid: must be {_rule(field).describe()}"
                              + (f" ({help_line})" if help_line else ""))
    if cfg is not None:
        try:
            settings.check(cfg)
        except ConfigError as err:  # a group's check may name its keys without the group's path
            if not where or where in str(err):
                raise
            raise ConfigError(f"{where}: {err}") from None


def parse_settings(declaration: type[Settings], given: Mapping[str, Any] | DictConfig | None, where: str,
                   cfg: DictConfig | None = None) -> Any:
    """`given` over the declaration's defaults, as an instance of `declaration`: an unknown key, a
    wrong type or a value outside its rule is a ConfigError naming `where.key` and what is valid."""
    if given is not None and not isinstance(given, (Mapping, DictConfig)):
        raise ConfigError(f"{where} must be a mapping of settings, got {given!r}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(declaration), given or {})
        settings = OmegaConf.to_object(merged)
    except ConfigKeyError as err:
        raise ConfigError(unknown_key_message(declaration, str(err.full_key), where)) from None
    except OmegaConfBaseException as err:  # a wrong type, a missing required value
        key = f"{where}.{err.full_key}" if err.full_key else where
        raise ConfigError(f"{key}: {err.msg.splitlines()[0]}") from None
    check_settings(settings, where, cfg)
    return settings


def unknown_key_message(declaration: type[Settings], full_key: str, where: str = "") -> str:
    """`where.a.b is not a setting; did you mean ...? the settings of where.a are: ...`: the
    section is the innermost group the key reaches, the suggestion the closest of its names."""
    *path, name = full_key.split(".")
    section, group = declaration, where
    for part in path:
        section = type(getattr(section(), part))
        group = f"{group}.{part}" if group else part
    names = [f.name for f in dataclasses.fields(section)]
    close = difflib.get_close_matches(name, names, n=2)
    guess = f" did you mean {' or '.join(close)}?" if close else ""
    owner = f"the settings of {group} are" if group else "the top-level settings are"
    return f"{f'{where}.' if where else ''}{full_key} is not a setting;{guess} {owner}: {', '.join(names)}"


def _type_name(declaration: type[Settings], field: dataclasses.Field) -> str:
    """`int`, `list[int]`, `str or null` (Optional), `any`."""
    hint = typing.get_type_hints(declaration)[field.name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return f"{_hint_text(inner)} or null"
    return _hint_text(hint)


def _hint_text(hint: Any) -> str:
    if hint is Any:
        return "any"
    return hint.__name__ if isinstance(hint, type) and typing.get_origin(hint) is None else \
        str(hint).replace("typing.", "")


def settings_table(declaration: type[Settings], prefix: str) -> str:
    """The reference table of a declaration in Markdown, nested groups included: key, type, default,
    valid values, help, source."""
    return "\n".join(["| key | type | default | valid | what it is | source |", "|---|---|---|---|---|---|",
                      *_table_rows(declaration, prefix)])


def _table_rows(declaration: type[Settings], prefix: str) -> list[str]:
    rows, defaults = [], declaration()
    for field in dataclasses.fields(declaration):
        default, key = getattr(defaults, field.name), f"{prefix}.{field.name}" if prefix else field.name
        if isinstance(default, Settings):
            rows += _table_rows(type(default), key)
            continue
        shown = "required" if default == "???" else f"`{_yaml(default)}`"
        rows.append(f"| `{key}` | {_type_name(declaration, field)} | {shown} | {_rule(field).describe()} | "
                    f"{field.metadata.get('help', '')} | {field.metadata.get('source', '')} |")
    return rows


def _yaml(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
