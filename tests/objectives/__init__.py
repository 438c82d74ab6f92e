"""Tests of solo_equimod.objectives."""
