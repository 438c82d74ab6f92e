"""Evaluation of frozen checkpoints: linear probe, kNN, equivariance (Eq. 5, 6), augmentation
sensitivity; `python -m solo_equimod.eval <measure> CKPT`."""
