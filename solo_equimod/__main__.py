"""`python -m solo_equimod`: the commands this package installs and the shipped configs they run."""

from __future__ import annotations

from itertools import groupby

from solo_equimod.shipped import DEFAULT_FOLDER, KINDS, shipped_names

COMMANDS = (
    ("solo-equimod-pretrain --config-name NAME [key=value ...]",
     "pretrain a method (in a checkout: python main_pretrain.py ...)"),
    ("solo-equimod-linear --config-name NAME pretrained_feature_extractor=CKPT [key=value ...]",
     "linear evaluation of a pretrained backbone (in a checkout: python main_linear.py ...)"),
    ("python -m solo_equimod.reference", "the settings tables: every key, its type, default and valid values"),
    ("python -m solo_equimod.zoo list", "the model zoo: list, download, verify and export checkpoints"),
)


def usage() -> str:
    """The commands, then the shipped configs by kind and folder (a bare NAME is the cifar/ one)."""
    lines = ["solo-equimod commands:"]
    lines += [f"  {command}\n      {what}" for command, what in COMMANDS]
    lines.append(f"\nShipped configs, --config-name FOLDER/NAME (a bare NAME is {DEFAULT_FOLDER}/NAME, the CIFAR-10 "
                 f"recipe); --config-path DIR --config-name NAME runs a config of your own:")
    for kind, what in KINDS.items():
        lines.append(f"  {what} (solo-equimod-{kind}):")
        for folder, names in groupby(shipped_names(kind), key=lambda n: n.split("/", 1)[0]):
            lines.append(f"    {folder}/: {', '.join(n.split('/', 1)[1] for n in names)}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(usage())
