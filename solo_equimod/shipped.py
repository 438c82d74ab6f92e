"""The shipped configs (the recipes of `scripts/pretrain/<dataset>/` and `scripts/linear/<dataset>/`) and
their names: `byol_equimod` is the CIFAR-10 recipe, `imagenet/byol_equimod` the ImageNet one.

In a checkout (and an editable install) the configs are read where they are kept, under `scripts/`;
a built wheel carries a copy of the same files as package data, `solo_equimod/configs/` (setup.py), so
an installed package finds them without the checkout.
"""

from __future__ import annotations

from pathlib import Path

from solo_equimod.errors import ConfigError
from solo_equimod.suggest import closest, did_you_mean

KINDS = {"pretrain": "pretraining", "linear": "linear-evaluation"}
DEFAULT_FOLDER = "cifar"  # a bare name is the paper's CIFAR-10 recipe
_PACKAGE = Path(__file__).resolve().parent


def configs_root() -> Path:
    """The folder holding `pretrain/` and `linear/`: the wheel's package data, else the checkout's `scripts/`."""
    for root in (_PACKAGE / "configs", _PACKAGE.parent / "scripts"):
        if (root / "pretrain").is_dir():
            return root
    raise FileNotFoundError(f"the shipped configs are missing: neither {_PACKAGE / 'configs'} nor "
                            f"{_PACKAGE.parent / 'scripts'} has pretrain/ (a broken install?)")


def shipped_names(kind: str) -> list[str]:
    """Every shipped config of `kind` as `<folder>/<name>`; files starting with `_` are shared parts, not recipes."""
    base = configs_root() / kind
    return sorted(f"{p.parent.name}/{p.stem}" for p in base.glob("*/*.yaml") if not p.name.startswith("_"))


def resolve(kind: str, name: str) -> tuple[Path, str]:
    """`--config-name` -> (the folder to use as Hydra's config path, the config's name in it).

    `name` is `<name>` (the `cifar/` recipe, else the only folder that has it) or `<folder>/<name>`,
    `.yaml` optional. An unknown or ambiguous name is a ConfigError listing the configs that exist."""
    stem = name[:-len(".yaml")] if name.endswith(".yaml") else name
    names = shipped_names(kind)
    what = KINDS[kind]
    if "/" in stem:
        folder, leaf = stem.rsplit("/", 1)
        if f"{folder}/{leaf}" in names:
            return configs_root() / kind / folder, leaf
        in_folder = [n.split("/", 1)[1] for n in names if n.startswith(f"{folder}/")]
        if not in_folder:
            folders = sorted({n.split("/", 1)[0] for n in names})
            raise ConfigError(f"--config-name {name}: there is no folder {folder!r} of shipped {what} configs; "
                              f"{did_you_mean(folder, folders)}the folders are: {', '.join(folders)}")
        raise ConfigError(f"--config-name {name}: no shipped {what} config {leaf!r} in {folder}/; "
                          f"{did_you_mean(leaf, in_folder, prefix=f'{folder}/')}the configs in {folder}/ are: "
                          f"{', '.join(in_folder)}")
    matches = [n for n in names if n.split("/", 1)[1] == stem]
    if f"{DEFAULT_FOLDER}/{stem}" in matches:
        matches = [f"{DEFAULT_FOLDER}/{stem}"]
    if len(matches) == 1:
        folder, leaf = matches[0].split("/", 1)
        return configs_root() / kind / folder, leaf
    if matches:
        raise ConfigError(f"--config-name {name} is ambiguous: it is {', '.join(matches)}; give one of these names")
    defaults = [n.split("/", 1)[1] for n in names if n.startswith(f"{DEFAULT_FOLDER}/")]
    near = [leaf if leaf in defaults else full for leaf in closest(stem, {n.split("/", 1)[1] for n in names})
            for full in names if full.endswith(f"/{leaf}")]
    hint = f"did you mean {' or '.join(dict.fromkeys(near))}? " if near else ""
    raise ConfigError(f"--config-name {name}: no shipped {what} config of that name; {hint}"
                      f"the configs a bare name finds ({DEFAULT_FOLDER}/, CIFAR-10) are: {', '.join(defaults)}; "
                      f"others are <folder>/<name> (python -m solo_equimod lists them all), or pass "
                      f"--config-path DIR for a folder of your own")
