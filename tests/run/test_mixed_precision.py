"""What runs inside the training step gives under `16-mixed`'s autocast what it gives at full precision.

Reference: the same function on the same inputs without autocast. The losses (CARE, EquiMod, SIE)
and the batched views CARE draws in the step run in float32 with autocast off
(`solo_equimod.precision`), so they must match exactly (up to float32 summation order, 1e-6), where
bfloat16 arithmetic would be off in the third digit (checked here too, so the test can tell).
EquiMod's parameter normaliser is element-wise, which autocast leaves in float32.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from solo_equimod.losses.care import care_loss
from solo_equimod.losses.equimod import equimod_loss
from solo_equimod.losses.sie import sie_loss
from solo_equimod.methods import METHODS
from solo_equimod.objectives.equimod import ParamNormalizer
from solo_equimod.precision import float32_region
from tests.conftest import tiny_pretrain_cfg
from tests.helpers.care import CARE_POLICY, care_batch

DTYPES = [torch.bfloat16, torch.float16]


def _embeddings(n: int, d: int, seed: int, noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Two L2-normalised (n, d) embeddings, the second a small perturbation of the first (as CARE's views)."""
    g = torch.Generator().manual_seed(seed)
    z1 = F.normalize(torch.randn(n, d, generator=g), dim=1)
    return z1, F.normalize(z1 + noise * torch.randn(n, d, generator=g), dim=1)


def _losses() -> dict[str, tuple]:
    """name -> (loss function returning a scalar or a dict of terms, its inputs)."""
    z1, z2 = _embeddings(64, 128, seed=0)
    p1, p2 = _embeddings(64, 32, seed=1, noise=0.3)
    return {
        "care": (care_loss, (z1, z2, 16)),
        "equimod_paper": (lambda a, b: equimod_loss(a, b, 0.2, "paper"), ([z1, z2], [p1.repeat(1, 4), p2.repeat(1, 4)])),
        "equimod_official": (lambda a, b: equimod_loss(a, b, 0.2, "official"), ([z1], [z2])),
        "sie": (sie_loss, ((p1, p2), (z1[:, :64], z2[:, :64]), z1[:, :64] + 0.01)),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["care", "equimod_paper", "equimod_official", "sie"])
def test_losses_under_autocast_equal_the_float32_loss(name: str, dtype: torch.dtype) -> None:
    loss, inputs = _losses()[name]
    reference = loss(*inputs)
    with torch.autocast("cpu", dtype=dtype):
        mixed = loss(*inputs)
    terms, references = (x if isinstance(x, dict) else {"loss": x} for x in (mixed, reference))
    for term, value in terms.items():  # every term: SIE's small covariance term hardly moves its total
        assert value.dtype == torch.float32, term
        torch.testing.assert_close(value, references[term], rtol=1e-6, atol=0.0, msg=term)


def test_float32_region_is_what_makes_the_care_loss_exact() -> None:
    """The control: the same CARE loss body in bfloat16 autocast misses the float32 value by far more
    than the tolerance above, and the wrapped function's gradients come back in the inputs' dtype."""
    z1, z2 = _embeddings(64, 128, seed=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        unwrapped = care_loss.__wrapped__(z1, z2, 16)
    assert abs(float(unwrapped) / float(care_loss(z1, z2, 16)) - 1) > 1e-4
    half = z1.to(torch.bfloat16).requires_grad_()
    float32_region(lambda a: (a * 2).sum())(half).backward()
    assert half.grad is not None and half.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("dtype", DTYPES)
def test_param_normalizer_under_autocast_is_float32_and_unchanged(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(2)
    samples = torch.rand(500, 15, generator=g) * torch.tensor([1.0] * 3 + [480.0] * 4 + [1.5] * 8)
    normalizer = ParamNormalizer(15)
    normalizer.fit(samples)
    reference = normalizer(samples[:16])
    with torch.autocast("cpu", dtype=dtype):
        mixed = normalizer(samples[:16])
    assert mixed.dtype == torch.float32 and torch.equal(mixed, reference)


def test_care_views_drawn_under_autocast_equal_those_without(tmp_path: Path) -> None:
    """The batch stage (CARE's `derive`, then the normalisation) inside a `16-mixed` step (bf16 autocast on
    CPU): the same draw gives the same float32 views."""
    cfg = tiny_pretrain_cfg("simclr", tmp_path, augmentations=CARE_POLICY, head_width=32,
                            **{"data.num_classes": 10, "objectives": {"care": {"chunks": 4}}})
    model = METHODS["simclr"](cfg)
    batch, _ = care_batch(model, 16)
    torch.manual_seed(7)
    reference = model.batch_stage(batch)["extras"]["care"]
    torch.manual_seed(7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model.batch_stage(batch)["extras"]["care"]
    for key in ("view1", "view2"):
        assert mixed[key].dtype == torch.float32 and torch.equal(mixed[key], reference[key]), key
