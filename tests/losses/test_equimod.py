"""The EquiMod loss against naive loop-over-rows implementations of Eq. 4 and of the official code."""

from __future__ import annotations

import math

import pytest
import torch

from solo_equimod.losses.equimod import equimod_loss


def _sim(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def naive_paper_loss(z_i, z_j, zh_i, zh_j, tau):
    """Eq. 4 applied to (i, j) and (j, i): anchor z'_a, positive zhat'_a, negatives z'_k for every
    view k of the 2N in the batch except the two views of the anchor's image; NT-Xent, so the
    positive also sits in the denominator."""
    n = z_i.shape[0]
    views, preds = torch.cat([z_i, z_j]), torch.cat([zh_i, zh_j])
    total = 0.0
    for a in range(2 * n):
        partner = (a + n) % (2 * n)
        pos = math.exp(_sim(views[a], preds[a]) / tau)
        neg = sum(math.exp(_sim(views[a], views[k]) / tau) for k in range(2 * n) if k not in (a, partner))
        total += -math.log(pos / (pos + neg))
    return total / (2 * n)


def naive_official_loss(z_i, z_j, zh_i, zh_j, tau):
    """The official code: NT-Xent over 4N rows [z_i; z_j; zh_i; zh_j], only self masked."""
    rows = torch.cat([z_i, z_j, zh_i, zh_j])
    m = rows.shape[0]
    total = 0.0
    for r in range(m):
        partner = (r + m // 2) % m
        den = sum(math.exp(_sim(rows[r], rows[k]) / tau) for k in range(m) if k != r)
        total += -(_sim(rows[r], rows[partner]) / tau - math.log(den))
    return total / m


@pytest.fixture
def embeddings():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(5, 7, generator=g, dtype=torch.float64) for _ in range(4)]


@pytest.mark.parametrize("tau", [0.2, 0.5])
def test_paper_variant_equals_naive_eq4(embeddings, tau):
    z_i, z_j, zh_i, zh_j = embeddings
    got = equimod_loss([z_i, z_j], [zh_i, zh_j], temperature=tau, variant="paper")
    assert float(got) == pytest.approx(naive_paper_loss(z_i, z_j, zh_i, zh_j, tau), rel=1e-9)


@pytest.mark.parametrize("tau", [0.2, 0.5])
def test_official_variant_equals_naive_4n_rows(embeddings, tau):
    z_i, z_j, zh_i, zh_j = embeddings
    got = equimod_loss([z_i, z_j], [zh_i, zh_j], temperature=tau, variant="official")
    assert float(got) == pytest.approx(naive_official_loss(z_i, z_j, zh_i, zh_j, tau), rel=1e-6)


def test_variants_differ_and_paper_excludes_the_same_image(embeddings):
    z_i, z_j, zh_i, zh_j = embeddings
    paper = equimod_loss([z_i, z_j], [zh_i, zh_j], variant="paper")
    official = equimod_loss([z_i, z_j], [zh_i, zh_j], variant="official")
    assert float(paper) != pytest.approx(float(official), rel=1e-3)
    # one image: Eq. 4 leaves no negative, so the loss is 0 whatever the views; the official
    # variant repels the other view and the predictions, so it depends on them
    one = [t[:1] for t in embeddings]
    for z_other in (one[1], -one[1], one[0]):
        assert float(equimod_loss([one[0], z_other], one[2:], variant="paper")) == pytest.approx(0.0, abs=1e-12)
    official_losses = {round(float(equimod_loss([one[0], z], one[2:], variant="official")), 6) for z in (one[1], -one[1])}
    assert len(official_losses) == 2


def test_perfect_predictions_give_low_loss():
    g = torch.Generator().manual_seed(1)
    z_i, z_j = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    good = equimod_loss([z_i, z_j], [z_i, z_j], temperature=0.1)
    bad = equimod_loss([z_i, z_j], [z_j.roll(1, 0), z_i.roll(1, 0)], temperature=0.1)
    assert float(good) < float(bad)


def test_unknown_variant_is_named():
    z = torch.randn(2, 3)
    with pytest.raises(ValueError, match="loss_variant='nope'"):
        equimod_loss([z, z], [z, z], variant="nope")  # type: ignore[arg-type]
