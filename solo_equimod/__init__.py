"""solo-equimod: equivariant self-supervised learning (EquiMod and friends)."""

__version__ = "0.1.0"
