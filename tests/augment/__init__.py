"""Tests of solo_equimod.augment."""
