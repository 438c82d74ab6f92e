"""The torchvision pretraining transform: image -> views, raw parameter vectors, image size and
the inputs objectives asked for (the original, extras)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from solo_equimod.augment.params import AugmentationLayout
from solo_equimod.augment.per_image_applier import apply_view_params, apply_view_params_and_shift
from solo_equimod.augment.policy import ViewPolicy, layout_for
from solo_equimod.augment.sampler import sample_view, sample_views


@dataclass(frozen=True)
class OriginalView:
    """How the un-augmented image is shown to the encoder: as is (CIFAR-size data) or
    Resize(`resize`) + CenterCrop(`center_crop`) (ImageNet-size data: 256 / 224)."""

    resize: int | None = None
    center_crop: int | None = None

    def crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """The region of a (height, width) input that this view shows, as (x, y, w, h) in input
        pixels: views without a random crop that should show what the original shows use it."""
        new_h, new_w = height, width
        if self.resize is not None:  # torchvision: shorter side to `resize`, longer side truncated
            short, long = sorted((height, width))
            new_short, new_long = self.resize, int(self.resize * long / short)
            new_h, new_w = (new_short, new_long) if height <= width else (new_long, new_short)
        crop_h = crop_w = self.center_crop
        if crop_h is None:
            return 0, 0, width, height
        top, left = int(round((new_h - crop_h) / 2.0)), int(round((new_w - crop_w) / 2.0))  # torchvision center_crop
        sy, sx = height / new_h, width / new_w
        return round(left * sx), round(top * sy), round(crop_w * sx), round(crop_h * sy)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if self.resize is not None:
            image = F.resize(image, [self.resize], antialias=True)
        if self.center_crop is not None:
            image = F.center_crop(image, [self.center_crop])
        return image


def normalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 image -> float in [0, 1] -> standardised per channel."""
    return F.normalize(F.to_dtype(image, torch.float32, scale=True), list(mean), list(std))


def to_uint8_tensor(image: Image.Image | torch.Tensor) -> torch.Tensor:
    """PIL image or uint8 tensor -> uint8 RGB CHW tensor."""
    if isinstance(image, torch.Tensor):
        return image if image.shape[0] == 3 else image.expand(3, -1, -1)
    return F.pil_to_tensor(image.convert("RGB"))


class ParamPretrainTransform:
    """Makes the views of one image and returns their raw Appendix A.1 vectors.

    Returns one sample of a `Batch` (`solo_equimod.data.batch`): `views` and `params` (lists of
    normalised float views and float32 vectors of `self.layout.dim` components, one per view),
    `image_size` (height, width), the `original` as uint8 levels when `with_original` (objectives make
    inputs from it on the training device; the method's batch stage normalises it), each view's
    `color_shift` (its channels' means before minus after colour jitter, `apply.color_shift`) when
    `with_color_shift`, and `extras`: each of `extras`' transforms applied to the uint8 image.
    """

    def __init__(
        self,
        policies: Sequence[ViewPolicy],
        mean: Sequence[float],
        std: Sequence[float],
        original: OriginalView = OriginalView(),
        with_original: bool = True,
        extras: Mapping[str, Callable[[torch.Tensor], Any]] | None = None,
        with_color_shift: bool = False,
    ) -> None:
        self.policies = list(policies)
        self.layout: AugmentationLayout = layout_for(self.policies)
        self.mean, self.std = list(mean), list(std)
        self.original = original
        self.with_original = with_original
        self.extras = dict(extras or {})
        self.with_color_shift = with_color_shift

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return normalize(image, self.mean, self.std)

    def __call__(self, image: Image.Image | torch.Tensor) -> dict[str, Any]:
        img = to_uint8_tensor(image)
        height, width = img.shape[-2:]
        views, params, shifts = [], [], []
        for policy in self.policies:
            p = sample_view(policy, height, width)
            view, shift = apply_view_params_and_shift(img, p, policy) if self.with_color_shift else \
                (apply_view_params(img, p, policy), None)
            views.append(self.normalize(view))
            params.append(self.layout.encode_tensor(p))
            shifts.append(shift)
        sample = {"views": views, "params": params, "image_size": torch.tensor([height, width]),
                  "extras": {name: make(img) for name, make in self.extras.items()}}
        if self.with_original:
            sample["original"] = self.original(img)
        if self.with_color_shift:
            sample["color_shift"] = shifts
        return sample

    def sample_param_vectors(self, sizes: Sequence[tuple[int, int]], num_samples: int, seed: int) -> torch.Tensor:
        """Seeded raw vectors from the same sampler over the given (height, width) input sizes,
        cycling through views and sizes: the sample that the model's normalisation is estimated on."""
        if not sizes:
            raise ValueError("need at least one input image size to sample augmentation parameters")
        generator = torch.Generator().manual_seed(seed)
        size_of = torch.tensor(sizes, dtype=torch.long)
        rows = torch.empty(num_samples, self.layout.dim)
        k = torch.arange(num_samples)
        for v, policy in enumerate(self.policies):
            mine = k[k % len(self.policies) == v]
            hw = size_of[(mine // len(self.policies)) % len(sizes)]
            rows[mine] = self.layout.encode_batch(sample_views(policy, hw[:, 0], hw[:, 1], generator))
        return rows
