"""Tests of solo_equimod.methods."""
