from setuptools import find_packages, setup

setup(
    name="solo-equimod",
    version="0.1.0",
    description="Equivariant self-supervised learning (EquiMod and friends) in a solo-learn-style library",
    packages=find_packages(include=["solo_equimod", "solo_equimod.*"]),
    package_data={"solo_equimod.zoo": ["manifest.json", "weights/*.pt"]},  # the zoo works from a wheel too
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
    ],
    extras_require={
        "dali": ["nvidia-dali-cuda130"],
        "dev": ["pytest>=7"],
    },
)
