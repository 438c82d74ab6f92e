"""Tests of solo_equimod.losses."""
