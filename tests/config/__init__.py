"""Tests of solo_equimod.config."""
