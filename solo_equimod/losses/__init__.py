"""Small pure loss functions (the EquiMod loss of Eq. 4 and its official-code variant), tested against naive loops."""
