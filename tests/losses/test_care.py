"""The CARE loss against a naive loop over chunks and rows, and its defining property: zero under
an orthogonal transformation of the embeddings (one per chunk), positive under a non-orthogonal one."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from solo_equimod.losses.care import care_loss


def naive_care_loss(z1: torch.Tensor, z2: torch.Tensor, chunks: int) -> float:
    """Chunks of N // S rows, leftover rows dropped; per chunk 2 * mean over rows i of
    sum_{j != i} (<z1_i, z1_j> - <z2_i, z2_j>)^2; then the mean over chunks."""
    size = z1.shape[0] // chunks
    total = 0.0
    for c in range(chunks):
        rows = range(c * size, (c + 1) * size)
        per_row = [sum((float(z1[i] @ z1[j]) - float(z2[i] @ z2[j])) ** 2 for j in rows if j != i) for i in rows]
        total += 2 * sum(per_row) / size
    return total / chunks


def _sphere(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=1)


@pytest.mark.parametrize(("n", "chunks"), [(12, 3), (10, 3), (8, 1), (9, 4)])
def test_equals_a_naive_loop_over_chunks_and_rows(n: int, chunks: int) -> None:
    z1, z2 = _sphere(n, 5, 0), _sphere(n, 5, 1)
    assert care_loss(z1, z2, chunks).item() == pytest.approx(naive_care_loss(z1, z2, chunks), rel=1e-12)
    # the leftover rows (n % chunks of them) do not count
    z2_other_tail = torch.cat([z2[: n - n % chunks], _sphere(n % chunks, 5, 2)])
    assert care_loss(z1, z2_other_tail, chunks) == care_loss(z1, z2, chunks)


def test_zero_under_an_orthogonal_transformation_per_chunk_positive_otherwise() -> None:
    chunks, size, d = 3, 6, 8
    z1 = _sphere(chunks * size, d, 3)
    gen = torch.Generator().manual_seed(4)
    rotations = [torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))[0] for _ in range(chunks)]
    rotated = torch.cat([z1[c * size:(c + 1) * size] @ q for c, q in enumerate(rotations)])
    assert care_loss(z1, rotated, chunks).item() < 1e-20
    # one rotation across chunks is orthogonal too; a linear map that is not (then back on the sphere) is not
    assert care_loss(z1, z1 @ rotations[0], chunks).item() < 1e-20
    stretch = torch.diag(torch.linspace(0.2, 3.0, d, dtype=torch.float64))
    sheared = F.normalize(z1 @ (rotations[0] @ stretch), dim=1)
    assert care_loss(z1, sheared, chunks).item() > 0.05
    # and a different rotation per row breaks the chunk's geometry
    per_row = torch.stack([z1[i] @ rotations[i % chunks] for i in range(chunks * size)])
    assert care_loss(z1, per_row, chunks).item() > 0.05


@pytest.mark.parametrize("chunks", [0, 7])
def test_chunks_that_leave_fewer_than_two_rows_are_refused(chunks: int) -> None:
    z = _sphere(12, 4, 0)
    with pytest.raises(ValueError, match=rf"objectives.care.chunks={chunks} .* between 1 and 6"):
        care_loss(z, z, chunks)
