"""The CARE equivariance loss (Gupta, Robinson et al., NeurIPS 2023; Sharut/CARE
cifar10_cifar100_stl10/utils.py `equivariance_loss`).

The batch's rows are split into `num_chunks` chunks of N // S rows (leftover rows dropped, as the
official code); within a chunk every image had the same pair of transformations (t1, t2), so an
orthogonal action of the augmentations leaves the chunk's Gram matrix unchanged. For a chunk with
embeddings Z1, Z2 (n x D, L2-normalised by the model, not here), G = Z Z^T without its diagonal and

    loss_chunk = 2 * mean_i ||G1[i] - G2[i]||^2   (a row's squared norm over its n - 1 entries),

and the loss is the mean over chunks. Chunks stay within one process (the official code's
`--equiv-splits-per-gpu`), so nothing is gathered: DDP's mean over processes is the mean over all
chunks of the global batch.

The loss computes in float32 with autocast off (`solo_equimod.precision`): under mixed precision the
Gram differences of nearly equal matrices would keep only bfloat16's / float16's 2-3 digits.
"""

from __future__ import annotations

import torch

from solo_equimod.precision import float32_region


@float32_region
def care_loss(z1: torch.Tensor, z2: torch.Tensor, num_chunks: int) -> torch.Tensor:
    """Mean over chunks of 2 * mean over rows of the squared off-diagonal Gram-row differences."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"CARE compares two (N, D) embeddings of the same shape, got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    size = z1.shape[0] // num_chunks if num_chunks >= 1 else 0
    if size < 2:
        raise ValueError(f"objectives.care.chunks={num_chunks} leaves chunks of {size} rows from {z1.shape[0]}; "
                         f"each chunk needs >= 2 rows (chunks between 1 and {z1.shape[0] // 2})")
    a, b = (z[: size * num_chunks].reshape(num_chunks, size, -1) for z in (z1, z2))
    diff = a @ a.transpose(1, 2) - b @ b.transpose(1, 2)  # (S, n, n)
    off_diagonal = ~torch.eye(size, dtype=torch.bool, device=z1.device)
    return 2 * (diff.pow(2) * off_diagonal).sum(dim=2).mean()
