"""Tests of solo_equimod.data (and the recorded reference data of other tests)."""
