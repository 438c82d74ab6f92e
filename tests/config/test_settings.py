"""The settings declarations: rules, parsing, the reference tables, and every shipped declaration's
own consistency (defaults obey their rules, every setting has help, Hydra accepts each as a schema)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ValidationError

from solo_equimod.augment.policy import AugmentationSettings
from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.config.schema import PretrainConfig
from solo_equimod.config.settings import Rule, Settings, check_settings, parse_settings, setting, settings_table
from solo_equimod.errors import ConfigError
from solo_equimod.methods import BASE_METHODS
from solo_equimod.objectives import OBJECTIVES
from tests.conftest import REPO


@dataclass
class Toy(Settings):
    width: int = setting(8, "hidden width", source="Sec. 1", ge=1)
    temperature: float = setting(0.5, "tau", gt=0)
    mode: str = setting("a", "which", choices=("a", "b"))
    cap: Optional[float] = setting(None, "an optional fraction", ge=0, le=1)

    def check(self, cfg: DictConfig) -> None:
        if self.mode == "b" and self.width < 4:
            raise ConfigError(f"mode=b needs width >= 4, got width={self.width}")


@pytest.mark.parametrize(("rule", "text"), [
    (Rule(ge=0), ">= 0"), (Rule(gt=0), "> 0"), (Rule(ge=0, le=1), "[0, 1]"), (Rule(gt=0, le=1), "(0, 1]"),
    (Rule(le=0.5), "<= 0.5"), (Rule(choices=("x", "y")), "one of: x, y"), (Rule(), "any"),
])
def test_rule_descriptions(rule: Rule, text: str) -> None:
    assert rule.describe() == text


def test_rule_bounds_and_finiteness() -> None:
    rule = Rule(ge=0)
    assert rule.allows(0) and rule.allows(2.5) and rule.allows(None)
    assert not rule.allows(-1e-9) and not rule.allows(math.nan) and not rule.allows(math.inf)
    assert not Rule(gt=0).allows(0) and Rule(gt=0).allows(1e-12)
    assert Rule(choices=(True, False)).allows(False) and not Rule(choices=("a",)).allows("b")


def test_parse_fills_defaults_and_converts_types() -> None:
    toy = parse_settings(Toy, {"width": "16", "temperature": 1}, "toy")
    assert (toy.width, toy.temperature, toy.mode, toy.cap) == (16, 1.0, "a", None)
    assert isinstance(toy.temperature, float)


@pytest.mark.parametrize(("given", "message"), [
    ({"widht": 3}, r"toy.widht is not a setting; did you mean width\? the settings of toy are: width, temperature, "
                   r"mode, cap"),
    ({"width": "abc"}, "toy.width: Value 'abc' of type 'str' could not be converted to Integer"),
    ({"width": 0}, r"toy.width=0 is invalid: must be >= 1 \(hidden width\)"),
    ({"temperature": -1}, r"toy.temperature=-1.0 is invalid: must be > 0 \(tau\)"),
    ({"temperature": "nan"}, r"toy.temperature=nan is invalid: must be > 0"),
    ({"mode": "c"}, r"toy.mode='c' is invalid: must be one of: a, b"),
    ({"cap": 1.5}, r"toy.cap=1.5 is invalid: must be \[0, 1\]"),
    ([1, 2], r"toy must be a mapping of settings, got \[1, 2\]"),
])
def test_parse_names_the_key_the_value_and_what_is_valid(given, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(Toy, given, "toy")


def test_cross_checks_run_with_the_whole_config_and_carry_the_path() -> None:
    toy = parse_settings(Toy, {"mode": "b", "width": 2}, "toy")  # without a config: rules only
    with pytest.raises(ConfigError, match=r"^toy: mode=b needs width >= 4, got width=2$"):
        check_settings(toy, "toy", OmegaConf.create())


def test_settings_table_of_a_hand_declared_group() -> None:
    assert settings_table(Toy, "toy").splitlines() == [
        "| key | type | default | valid | what it is | source |",
        "|---|---|---|---|---|---|",
        "| `toy.width` | int | `8` | >= 1 | hidden width | Sec. 1 |",
        "| `toy.temperature` | float | `0.5` | > 0 | tau |  |",
        "| `toy.mode` | str | `a` | one of: a, b | which |  |",
        "| `toy.cap` | float or null | `null` | [0, 1] | an optional fraction |  |",
    ]


def _declarations() -> dict[str, type[Settings]]:
    out: dict[str, type[Settings]] = {"pretrain": PretrainConfig, "augmentations[i]": AugmentationSettings}
    out.update({f"method_kwargs ({name})": cls.SETTINGS for name, cls in BASE_METHODS.items()})
    out.update({f"objectives.{name}": cls.SETTINGS for name, cls in OBJECTIVES.items()})
    return out


def _fields(declaration: type[Settings], where: str) -> list[tuple[str, dataclasses.Field, object]]:
    """(key, field, default) of every setting, nested groups flattened."""
    out = []
    for field in dataclasses.fields(declaration):
        default = getattr(declaration(), field.name)
        if isinstance(default, Settings):
            out += _fields(type(default), f"{where}.{field.name}")
        else:
            out.append((f"{where}.{field.name}", field, default))
    return out


@pytest.mark.parametrize("where", sorted(_declarations()))
def test_every_declaration_is_documented_and_its_defaults_obey_its_rules(where: str) -> None:
    declaration = _declarations()[where]
    OmegaConf.structured(declaration)  # Hydra's schema: every type is one OmegaConf accepts
    for key, field, default in _fields(declaration, where):
        assert field.metadata.get("help"), f"{key} has no help line"
        assert default == "???" or field.metadata["rule"].allows(default), f"{key}: default {default!r} breaks its rule"


def test_hydra_types_method_and_objective_settings_at_composition() -> None:
    """A wrong type or a typo in a method's or an objective's setting fails when Hydra composes,
    naming the key (the shipped configs list `/method_kwargs: <method>` and `/objectives@...`)."""
    register_schemas()
    with initialize_config_dir(str(REPO / "scripts/pretrain/cifar"), version_base="1.3"):
        cfg = compose(config_name="byol_equimod")
        assert cfg.method_kwargs.tau_base == 0.996 and cfg.objectives.equimod.temperature == 0.2
        for override, key in (("method_kwargs.tau_base=abc", "tau_base"), ("objectives.equimod.weight=abc", "weight"),
                              ("method_kwargs.tau=0.9", "tau"), ("objectives.equimod.temprature=0.1", "temprature")):
            with pytest.raises((ConfigCompositionException, ValidationError)) as err:
                compose(config_name="byol_equimod", overrides=[override])
            assert key in str(err.value) + str(err.value.__cause__), override


def test_reference_tables_come_from_the_declarations(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m solo_equimod.reference NAME`: CARE's chunks row as its official script sets it, and
    an unknown name is a one-line error with status 2."""
    from solo_equimod.reference import main

    assert main(["care"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## Objective `care`\n")
    assert "| `objectives.care.chunks` | int | `16` | >= 1 | chunks per process; the rows of a chunk share one pair " \
           "of augmentations | cifar10.sh --equiv-splits 16; ImageNet-100 --equiv-splits-per-gpu 4 |" in out
    assert main(["nope"]) == 2
    assert capsys.readouterr().err.startswith("error: no settings named 'nope'; valid: pretrain, augmentations, simclr")
