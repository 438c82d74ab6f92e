"""Views with one augmentation at a time: the dataset the equivariance and sensitivity measures read.

Each augmentation is measured alone (a random crop with everything else off; or the full image
with that one augmentation forced on with sampled parameters), and the full policy as trained.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from solo_equimod.augment import AugmentationLayout, ViewPolicy
from solo_equimod.augment.per_image_applier import apply_view_params
from solo_equimod.augment.pipeline import OriginalView, to_uint8_tensor
from solo_equimod.augment.sampler import sample_view

# Measured augmentations in the paper's order, with the names of its figures.
AUGMENTATION_LABELS = {"crop": "crop", "flip": "horizontal flip", "jitter": "color jitter", "gray": "grayscale",
                       "blur": "gaussian blur", "solarize": "solarize", "all": "all (policy)"}
_FORCE_ON = {"flip": "flip_prob", "jitter": "jitter_prob", "gray": "gray_prob", "blur": "blur_prob",
             "solarize": "solarize_prob"}


def _only(policy: ViewPolicy, augmentation: str) -> ViewPolicy:
    """`policy` with every augmentation off except `augmentation` (forced on; crop: random)."""
    probs = {name: 1.0 if aug == augmentation else 0.0 for aug, name in _FORCE_ON.items()}
    return dataclasses.replace(policy, **probs, rrc_enabled=augmentation == "crop")


def measured_policies(policies: list[ViewPolicy]) -> dict[str, list[ViewPolicy]]:
    """Per measured augmentation, the view policies that isolate it (only views whose policy can
    apply it keep their strengths), plus "all": the pretraining policies unchanged."""
    out: dict[str, list[ViewPolicy]] = {}
    for aug, prob in [("crop", None), *_FORCE_ON.items()]:
        able = [p for p in policies if (p.rrc_enabled if prob is None else getattr(p, prob) > 0)]
        if able:
            out[aug] = [_only(p, aug) for p in able]
    out["all"] = list(policies)
    return out


class AugmentationViews(Dataset):
    """Image -> {"original", "views": {augmentation: view}, "params": {augmentation: raw Appendix A.1
    vector}, "target"}. Views of the k-th image use the k-th policy of each list in turn. A view
    without a random crop shows the region the original shows (on ImageNet-size data, Resize(256) +
    CenterCrop(224)), so that e.g. "flip only" measures only the flip. `with_examples`: also
    "example_original" and "example_views", the next image (resized to this one's size, so that the
    same pixel crop applies) shown the same way under the same parameters."""

    def __init__(self, base: Dataset, policies: dict[str, list[ViewPolicy]], layout: AugmentationLayout,
                 mean: list[float], std: list[float], original: OriginalView, with_examples: bool = False) -> None:
        self.base, self.policies, self.layout = base, policies, layout
        self.mean, self.std, self.original = mean, std, original
        self.with_examples = with_examples

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def _normalize(self, image: torch.Tensor) -> torch.Tensor:
        return TF.normalize(TF.to_dtype(image, torch.float32, scale=True), self.mean, self.std)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, target = self.base[index]
        img = to_uint8_tensor(image)
        height, width = img.shape[-2:]
        example = None
        if self.with_examples:
            example = to_uint8_tensor(self.base[(index + 1) % len(self)][0])
            if example.shape[-2:] != img.shape[-2:]:
                example = TF.resize(example, [height, width], antialias=True)
        views, params, example_views = {}, {}, {}
        for aug, options in self.policies.items():
            policy = options[index % len(options)]
            p = sample_view(policy, height, width)
            if not policy.rrc_enabled:  # without a random crop, show what the original shows (and encode it)
                p = dataclasses.replace(p, crop=self.original.crop_box(height, width))
            views[aug] = self._normalize(apply_view_params(img, p, policy))
            params[aug] = self.layout.encode_tensor(p)
            if example is not None:
                example_views[aug] = self._normalize(apply_view_params(example, p, policy))
        item = {"original": self._normalize(self.original(img)), "views": views, "params": params, "target": int(target)}
        if example is not None:
            item |= {"example_original": self._normalize(self.original(example)), "example_views": example_views}
        return item
