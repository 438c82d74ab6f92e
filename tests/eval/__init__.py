"""Tests of solo_equimod.eval."""
