"""Tests of solo_equimod.zoo."""
