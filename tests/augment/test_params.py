"""Appendix A.1 encoding and the parameter-returning torchvision pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF  # v1 kernels: an independent re-application route
from omegaconf import OmegaConf
from PIL import Image

from solo_equimod.augment import AugmentationLayout, ParamPretrainTransform, ViewParams, ViewPolicy, layout_for
from solo_equimod.augment.policy import policies_from_config
from solo_equimod.errors import ConfigError
from tests.conftest import REPO


def test_appendix_a11_example_byol_imagenet_18d():
    layout = AugmentationLayout(flip=True, jitter=True, gray=True, blur=True, solarize=True)
    params = ViewParams(crop=(12, 9, 120, 96), jitter=True, factors=(1.13, 1, 0.84, -0.09), order=(3, 1, 2, 0),
                        gray=True)
    expected = [0, 1, 1, 0, 0, 12, 9, 120, 96, 1.13, 1, 0.84, -0.09, 3, 1, 2, 0, 0]
    assert layout.dim == 18
    assert layout.encode(params) == pytest.approx(expected, abs=0)
    assert layout.decode(expected) == params


def test_appendix_a12_example_simclr_cifar_15d():
    layout = AugmentationLayout(flip=True, jitter=True, gray=True)
    params = ViewParams(crop=(1, 2, 24, 27), flip=True)
    assert layout.encode(params) == [1, 0, 0, 1, 2, 24, 27, 1, 1, 1, 0, 0, 1, 2, 3]


def test_not_applied_jitter_encodes_defaults_even_if_factors_were_drawn():
    layout = AugmentationLayout(blur=True)
    p = ViewParams(crop=(0, 0, 8, 8), jitter=False, factors=(2, 2, 2, 0.3), order=(3, 2, 1, 0), sigma=1.5)
    assert layout.encode(p)[8:] == [1, 1, 1, 0, 0, 1, 2, 3, 0]


@pytest.mark.parametrize("policy_file, dim", [("simclr", 15), ("barlow", 15), ("byol", 18)])
def test_shipped_cifar_policies_dimension(policy_file, dim):
    entries = OmegaConf.load(REPO / f"scripts/pretrain/cifar/augmentations/{policy_file}.yaml")
    assert layout_for(policies_from_config(entries)).dim == dim


def test_imagenet_simclr_policy_is_17d():
    entries = OmegaConf.load(REPO / "scripts/pretrain/imagenet/augmentations/simclr.yaml")
    assert layout_for(policies_from_config(entries)).dim == 17


def _reference_view(image: torch.Tensor, p: ViewParams, policy: ViewPolicy) -> torch.Tensor:
    """Re-apply returned parameters: crop and resize with PIL (what the official code's PIL-image
    transforms do), the rest with torchvision's v1 kernels."""
    x, y, w, h = p.crop
    pil = Image.fromarray(image.permute(1, 2, 0).numpy()).crop((x, y, x + w, y + h))
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[policy.interpolation]
    view = torch.from_numpy(np.array(pil.resize((policy.crop_size,) * 2, resample))).permute(2, 0, 1)
    if p.flip:
        view = view.flip(-1)
    if p.jitter:
        ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
        for op in p.order:
            view = ops[op](view, p.factors[op])
    if p.gray:
        view = TF.rgb_to_grayscale(view, num_output_channels=3)
    if p.blur:
        view = TF.gaussian_blur(view, [policy.kernel_size] * 2, [p.sigma] * 2)
    if p.solarize:
        view = torch.where(view >= 128, 255 - view, view)
    return view


# v1 and v2 kernels round each uint8 op separately (resize alone differs by one level on ~25% of
# pixels) and colour jitter amplifies that (contrast/saturation factors, the hue HSV round trip):
# measured worst case over 400 views, mean 0.51 and max 8 levels. A wrong parameter on the noise
# image is far outside: a 1-pixel crop shift or a missed flip moves the mean by tens of levels.
# Bicubic: kernels disagree where the overshoot on pixel noise is clipped; the crop+resize alone
# differs between PIL and torch's uint8 kernel by up to 17 levels (torch's float kernel: 8), so
# the bicubic maximum is looser while the mean (and the negative controls below) stay as strict.
MEAN_TOL, MAX_TOL = 1.0 / 255, {"bilinear": 10.0 / 255, "bicubic": 32.0 / 255}


def _noise_image() -> torch.Tensor:
    return (torch.rand(3, 40, 56, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_returned_parameters_reproduce_each_view(interpolation):
    """Every view equals its own parameters re-applied to the original image with v1 kernels."""
    torch.manual_seed(0)
    policy = ViewPolicy(crop_size=24, blur_prob=0.5, solarize_prob=0.5, jitter_prob=0.9, gray_prob=0.3,
                        interpolation=interpolation)
    transform = ParamPretrainTransform([policy, policy], [0.0] * 3, [1.0] * 3)
    image = _noise_image()
    seen = set()
    for _ in range(40):
        sample = transform(image)
        assert sample["image_size"].tolist() == [40, 56] and sample["original"].shape == (3, 40, 56)
        for view, vec in zip(sample["views"], sample["params"]):
            p = transform.layout.decode(vec)
            seen |= {k for k in ("flip", "jitter", "gray", "blur", "solarize") if getattr(p, k)}
            diff = (view - _reference_view(image, p, policy).float() / 255).abs()
            assert diff.mean() <= MEAN_TOL and diff.max() <= MAX_TOL[interpolation], p
    assert seen == {"flip", "jitter", "gray", "blur", "solarize"}


def test_wrong_parameters_do_not_reproduce_the_view():
    """Negative control for the tolerance above."""
    torch.manual_seed(2)
    policy = ViewPolicy(crop_size=24, jitter_prob=0.0, gray_prob=0.0)
    transform = ParamPretrainTransform([policy, policy], [0.0] * 3, [1.0] * 3)
    image = _noise_image()
    sample = transform(image)
    views, params = sample["views"], sample["params"]
    p = transform.layout.decode(params[0])
    x, y, w, h = p.crop
    shifted = ViewParams(crop=(x + 1 if x == 0 else x - 1, y, w, h), flip=p.flip)
    flipped = ViewParams(crop=p.crop, flip=not p.flip)
    for wrong in (shifted, flipped):
        diff = (views[0] - _reference_view(image, wrong, policy).float() / 255).abs()
        assert diff.mean() > 10 * MEAN_TOL


def test_crop_window_lies_in_image_and_respects_scale():
    torch.manual_seed(1)
    policy = ViewPolicy(crop_size=16, crop_min_scale=0.2, crop_max_scale=0.6)
    transform = ParamPretrainTransform([policy, policy], [0.0] * 3, [1.0] * 3)
    vectors = transform.sample_param_vectors([(50, 70)], 500, seed=3)
    x, y, w, h = (vectors[:, transform.layout.names.index(n)] for n in ("crop_x", "crop_y", "crop_width", "crop_height"))
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= 70).all() and (y + h <= 50).all()
    area = w * h / (50 * 70)
    assert area.min() >= 0.2 - 0.02 and area.max() <= 0.6 + 0.02  # integer rounding of w, h


def test_flag_frequencies_follow_probabilities():
    policy = ViewPolicy(flip_prob=0.5, jitter_prob=0.8, gray_prob=0.2, blur_prob=0.1, solarize_prob=0.3)
    transform = ParamPretrainTransform([policy, policy], [0.0] * 3, [1.0] * 3)
    vectors = transform.sample_param_vectors([(32, 32)], 4000, seed=0)
    freq = vectors[:, :5].mean(0)
    expected = torch.tensor([0.5, 0.8, 0.2, 0.1, 0.3])
    assert torch.allclose(freq, expected, atol=4 * (expected * (1 - expected) / 4000).sqrt().max())


def test_seeded_sample_is_reproducible_and_leaves_global_rng_alone():
    transform = ParamPretrainTransform([ViewPolicy(), ViewPolicy()], [0.0] * 3, [1.0] * 3)
    torch.manual_seed(7)
    before = torch.rand(3)
    torch.manual_seed(7)
    a = transform.sample_param_vectors([(32, 32)], 50, seed=11)
    after = torch.rand(3)
    assert torch.equal(before, after)
    assert torch.equal(a, transform.sample_param_vectors([(32, 32)], 50, seed=11))


@pytest.mark.parametrize("bad, match", [
    ({"crop_size": 32, "num_crops": 2, "colour_jitter": {}}, "colour_jitter"),
    ({"num_crops": 2}, "crop_size"),
    ({"crop_size": 32, "num_crops": 2, "grayscale": {"prob": 1.5}},
     r"augmentations\[0\]\.grayscale\.prob=1\.5 is invalid: must be \[0, 1\]"),
    ({"crop_size": 32, "num_crops": 3}, "exactly 2 views"),
])
def test_bad_augmentation_entries_are_named(bad, match):
    with pytest.raises(ConfigError, match=match):
        policies_from_config([bad])
