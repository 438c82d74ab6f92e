"""solo-equimod's packaging. The shipped configs are kept under scripts/pretrain and scripts/linear (where
`--config-path` users and the tests read them); a built wheel carries a copy as package data,
solo_equimod/configs/{pretrain,linear}, which solo_equimod.shipped finds when there is no checkout."""

import os
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

CONFIG_KINDS = ("pretrain", "linear")


class BuildWithConfigs(build_py):
    """build_py, plus the YAML configs of scripts/<kind>/ copied to solo_equimod/configs/<kind>/."""

    def run(self) -> None:
        super().run()
        for kind in CONFIG_KINDS:
            for src in yaml_files(Path(__file__).resolve().parent / "scripts" / kind):
                target = Path(self.build_lib) / "solo_equimod" / "configs" / kind / src
                self.mkpath(str(target.parent))
                self.copy_file(str(Path("scripts") / kind / src), str(target))  # a symlink's target, as a file


def yaml_files(root: Path) -> list[Path]:
    """The YAML files below `root`, relative to it, through symlinked folders too (one recipe folder
    shares another's augmentations that way)."""
    return sorted(Path(folder, name).relative_to(root) for folder, _, names in os.walk(root, followlinks=True)
                  for name in names if name.endswith(".yaml"))


setup(
    name="solo-equimod",
    version="0.1.0",
    description="Equivariant self-supervised learning (EquiMod and friends) in a solo-learn-style library",
    packages=find_packages(include=["solo_equimod", "solo_equimod.*"]),
    package_data={"solo_equimod.zoo": ["manifest.json", "weights/*.safetensors"]},  # the zoo works from a wheel too
    cmdclass={"build_py": BuildWithConfigs},
    entry_points={"console_scripts": [
        "solo-equimod-pretrain = solo_equimod.entry:pretrain",
        "solo-equimod-linear = solo_equimod.entry:linear",
    ]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "lightning>=2.1",
        "lightly>=1.5",
        "timm>=0.9",
        "hydra-core>=1.3",
        "omegaconf>=2.3",
        "tensorboard",
        "matplotlib",
        "tqdm",
        "pillow",
        "safetensors>=0.4",  # weights without pickle: zoo exports, any-backbone evaluation
    ],
    extras_require={
        "dali": ["nvidia-dali-cuda130"],
        "dev": ["pytest>=7"],
        "docs": ["mkdocs==1.6.1", "mkdocs-material>=9.8,<9.9", "mkdocstrings>=1.0,<1.1", "mkdocstrings-python>=2.0,<2.1"],
    },
)
