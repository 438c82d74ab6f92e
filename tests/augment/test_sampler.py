"""The batch-level sampler against torchvision's own samplers, drawn independently.

References: `RandomResizedCrop.get_params`, `ColorJitter.get_params` and `GaussianBlur.get_params`
called once per draw, the policy's probabilities, and the uniform law on the 24 orders of the
four jitter operations. The check (`misses`) compares, per component, the mean and the standard
deviation (z < 5 with the standard errors of both samples), and the CDF of our draws at the
reference's deciles against the reference's own CDF there (z < 5, binomial errors): with 20,000 draws
per sample a 5-sigma false alarm over all components of all tests is below 1 in 10,000. The same
check must catch samplers with planted bugs (3 crop attempts instead of 10; one of 4 orders only).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.transforms import ColorJitter, GaussianBlur, RandomResizedCrop

from solo_equimod.augment import sampler
from solo_equimod.augment.params import AugmentationLayout
from solo_equimod.augment.policy import ViewPolicy
from solo_equimod.augment.sampler import sample_view, sample_views

N = 20_000
Z = 5.0
POLICY = ViewPolicy(crop_size=32, crop_min_scale=0.08, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1,
                    jitter_prob=0.8, gray_prob=0.2, blur_prob=0.5, solarize_prob=0.2)
SIZES = [(32, 32), (96, 96), (24, 200), (375, 500)]  # 24x200 often needs the centre fallback


def misses(ours: torch.Tensor, ref: torch.Tensor, names: list[str]) -> list[str]:
    """The components whose mean, std or decile CDF differ between two (N, D) samples."""
    out = []
    ours, ref = ours.double(), ref.double()
    n1, n2 = len(ours), len(ref)
    for k, name in enumerate(names):
        a, b = ours[:, k], ref[:, k]
        if b.std() == 0:
            if not bool((a == b[0]).all()):
                out.append(f"{name}: constant {float(b[0])} in the reference")
            continue
        z_mean = (a.mean() - b.mean()).abs() / math.sqrt(a.var() / n1 + b.var() / n2)
        # std's standard error from the fourth central moment, floored at the normal-data value
        se = [math.sqrt(max(float(((x - x.mean()) ** 4).mean() - x.var() ** 2), x.var() ** 2 / 2)
                        / (4 * len(x) * x.var())) for x in (a, b)]
        z_std = (a.std() - b.std()).abs() / math.hypot(*se)
        if z_mean > Z or z_std > Z:
            out.append(f"{name}: mean {float(a.mean()):.4g} vs {float(b.mean()):.4g}, std {float(a.std()):.4g} vs "
                       f"{float(b.std()):.4g}")
            continue
        for q in torch.quantile(b, torch.linspace(0.1, 0.9, 9, dtype=torch.float64)).unique():
            p1, p2 = float((a <= q).double().mean()), float((b <= q).double().mean())
            se = math.sqrt(max(p2 * (1 - p2), 1e-4) * (1 / n1 + 1 / n2))
            if abs(p1 - p2) / se > Z:
                out.append(f"{name}: P(<= {float(q):.4g}) {p1:.4f} vs {p2:.4f}")
                break
    return out


def order_misses(orders: torch.Tensor) -> list[str]:
    """Chi-square of the counts of the 24 orders against the uniform law (23 degrees of freedom:
    P(chi2 > 60) ~ 3e-5), plus the cells more than Z standard errors off their rate 1/24."""
    codes = (orders * torch.tensor([64, 16, 4, 1])).sum(1)
    counts = torch.tensor([int((codes == c).sum()) for c in
                           [sum(p * m for p, m in zip(perm, (64, 16, 4, 1))) for perm in _permutations()]])
    expected = len(orders) / 24
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    bad = [f"chi2 {chi2:.1f} over 24 orders"] if chi2 > 60 or counts.sum() != len(orders) else []
    sd = math.sqrt(len(orders) * (1 / 24) * (23 / 24))
    return bad + [f"order cell {i}: {int(c)} vs {expected:.0f}" for i, c in enumerate(counts) if abs(c - expected) > Z * sd]


def _permutations() -> list[tuple[int, ...]]:
    import itertools

    return list(itertools.permutations(range(4)))


def _rrc_reference(policy: ViewPolicy, height: int, width: int, n: int) -> torch.Tensor:
    dummy = torch.empty(1, height, width)
    rows = [RandomResizedCrop.get_params(dummy, scale=[policy.crop_min_scale, policy.crop_max_scale],
                                         ratio=list(policy.crop_ratio)) for _ in range(n)]
    return torch.tensor([[left, top, w, h] for top, left, h, w in rows])


def _crops(policy: ViewPolicy, height: int, width: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return sample_views(policy, torch.full((N,), height), torch.full((N,), width), generator).crop


CROP_NAMES = ["crop_x", "crop_y", "crop_width", "crop_height"]


@pytest.fixture(scope="module")
def rrc_references() -> dict[tuple[int, int], torch.Tensor]:
    torch.manual_seed(0)
    return {size: _rrc_reference(POLICY, *size, N) for size in SIZES}


@pytest.mark.parametrize("size", SIZES)
def test_crops_match_random_resized_crop(size: tuple[int, int], rrc_references: dict) -> None:
    ref = rrc_references[size]
    assert misses(_crops(POLICY, *size, seed=1), ref, CROP_NAMES) == []
    if size == (24, 200):  # the fallback really occurs there, and at torchvision's rate
        fallback = (ref[:, 2] == 32) & (ref[:, 3] == 24) & (ref[:, 0] == 84)
        assert fallback.double().mean() > 0.05


def test_planted_bug_three_crop_attempts_is_caught(rrc_references: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampler, "RRC_ATTEMPTS", 3)
    caught = [size for size in SIZES if misses(_crops(POLICY, *size, seed=1), rrc_references[size], CROP_NAMES)]
    assert (24, 200) in caught, caught  # where 10 attempts still often fail, 3 fall back far more


def _jitter_reference(policy: ViewPolicy, n: int) -> torch.Tensor:
    rows = []
    for _ in range(n):
        order, b, c, s, h = ColorJitter.get_params([max(0, 1 - policy.brightness), 1 + policy.brightness],
                                                   [max(0, 1 - policy.contrast), 1 + policy.contrast],
                                                   [max(0, 1 - policy.saturation), 1 + policy.saturation],
                                                   [-policy.hue, policy.hue])
        rows.append([b, c, s, h, *order.tolist()])
    return torch.tensor(rows)


def test_jitter_factors_and_orders_match_color_jitter() -> None:
    torch.manual_seed(2)
    ref = _jitter_reference(POLICY, N)
    drawn = sample_views(POLICY, torch.full((N,), 32), torch.full((N,), 32), torch.Generator().manual_seed(3))
    on = drawn.jitter
    ours = torch.cat([drawn.factors, drawn.order.float()], dim=1)[on]
    layout = AugmentationLayout()
    names = [n for n in layout.names if n.endswith("_factor") or n.startswith("jitter_order")]
    assert misses(ours, ref, names) == []
    assert order_misses(drawn.order[on]) == [] and order_misses(ref[:, 4:].long()) == []
    # where jitter is off: Appendix A.1's defaults
    assert (drawn.factors[~on] == torch.tensor([1.0, 1.0, 1.0, 0.0])).all()
    assert (drawn.order[~on] == torch.tensor([0, 1, 2, 3])).all()


def test_planted_bug_cyclic_orders_is_caught() -> None:
    shift = torch.randint(0, 4, (N,), generator=torch.Generator().manual_seed(4))
    cyclic = (torch.arange(4)[None, :] + shift[:, None]) % 4  # a wrong law: 4 of the 24 orders
    assert order_misses(cyclic) != []


def test_flags_and_sigma_match_their_laws() -> None:
    drawn = sample_views(POLICY, torch.full((N,), 32), torch.full((N,), 32), torch.Generator().manual_seed(5))
    for flag, prob in (("flip", POLICY.flip_prob), ("jitter", POLICY.jitter_prob), ("gray", POLICY.gray_prob),
                       ("blur", POLICY.blur_prob), ("solarize", POLICY.solarize_prob)):
        rate = getattr(drawn, flag).double().mean()
        assert abs(rate - prob) <= Z * math.sqrt(prob * (1 - prob) / N), (flag, rate, prob)
    torch.manual_seed(6)
    ref = torch.tensor([[GaussianBlur.get_params(POLICY.sigma_min, POLICY.sigma_max)] for _ in range(N)])
    assert misses(drawn.sigma[drawn.blur][:, None], ref, ["blur_sigma"]) == []
    assert (drawn.sigma[~drawn.blur] == 0).all()
    # the flags are drawn independently of each other (a shared uniform would correlate them)
    corr = np.corrcoef(torch.stack([drawn.flip, drawn.gray, drawn.solarize]).double().numpy())
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < Z / math.sqrt(N)


def test_rows_encode_as_the_layout_and_per_image_draws_are_seeded() -> None:
    layout = AugmentationLayout(blur=True, solarize=True)
    drawn = sample_views(POLICY, torch.tensor([32, 24, 375]), torch.tensor([32, 200, 500]),
                         torch.Generator().manual_seed(7))
    encoded = layout.encode_batch(drawn)
    for i in range(3):
        assert encoded[i].tolist() == pytest.approx(layout.encode(drawn.row(i)))
        x, y, w, h = drawn.row(i).crop
        assert x >= 0 and y >= 0 and x + w <= [32, 200, 500][i] and y + h <= [32, 24, 375][i]
    torch.manual_seed(8)
    first = sample_view(POLICY, 60, 80)
    torch.manual_seed(8)
    assert sample_view(POLICY, 60, 80) == first  # the global RNG (a DataLoader worker's) seeds it


def test_groups_share_one_draw_with_the_ungrouped_law(rrc_references: dict) -> None:
    groups = torch.arange(2 * N) // 2  # pairs
    drawn = sample_views(POLICY, torch.full((2 * N,), 32), torch.full((2 * N,), 32),
                         torch.Generator().manual_seed(9), groups=groups)
    vectors = AugmentationLayout(blur=True, solarize=True).encode_batch(drawn)
    assert torch.equal(vectors[0::2], vectors[1::2])  # each pair shares its draw
    assert len(torch.unique(vectors[0::2, 5:9], dim=0)) > N // 4  # and the pairs differ
    assert misses(drawn.crop[0::2], rrc_references[(32, 32)], CROP_NAMES) == []
    shuffled = torch.tensor([5, 2, 5, 9, 2])  # ids need not be sorted nor contiguous
    drawn = sample_views(POLICY, torch.full((5,), 32), torch.full((5,), 32), torch.Generator().manual_seed(1), shuffled)
    rows = [drawn.row(i) for i in range(5)]
    assert rows[0] == rows[2] and rows[1] == rows[4] and rows[0] != rows[1] and rows[3] != rows[0]


def test_a_group_of_different_sizes_is_an_error() -> None:
    with pytest.raises(ValueError, match="group 1 holds images of different sizes"):
        sample_views(POLICY, torch.tensor([32, 32, 40]), torch.tensor([32, 32, 40]), groups=torch.tensor([0, 1, 1]))
