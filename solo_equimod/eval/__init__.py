"""Evaluation: linear probe (and, later, kNN and equivariance measures)."""
