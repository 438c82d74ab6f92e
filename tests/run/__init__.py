"""Tests of solo_equimod.run."""
