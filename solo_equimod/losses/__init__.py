"""Small pure loss functions, one per method family."""
