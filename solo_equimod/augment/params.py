"""The parameters of one augmented view and their vector encoding (EquiMod paper, Appendix A.1).

A view is made by, in this order: random resized crop, horizontal flip, color jitter (in a random
order of its four operations), grayscale, Gaussian blur, solarize. `ViewParams` records what was
sampled; `AugmentationLayout` turns it into the raw numerical vector of Appendix A.1:

    [flags: flip, jitter, gray, (blur), (solarize)]
    [crop x (left), crop y (top), crop width, crop height]            (input-image pixels)
    [brightness, contrast, saturation, hue, order_1, order_2, order_3, order_4]   (if jitter)
    [sigma]                                                             (if blur)

with the order indices mapping {0: brightness, 1: contrast, 2: saturation, 3: hue} and the
defaults (1, 1, 1, 0), (0, 1, 2, 3) and sigma 0 when an augmentation is not applied. Only the
augmentations a policy can apply are part of the layout, so CIFAR SimCLR gives 15-d vectors
(A.1.2), ImageNet SimCLR 17-d and BYOL 18-d (A.1.1). Normalisation of the vector is the model's
job (see `solo_equimod.objectives.equimod.ParamNormalizer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Iterable

import torch

JITTER_OPS = ("brightness", "contrast", "saturation", "hue")
DEFAULT_JITTER_FACTORS = (1.0, 1.0, 1.0, 0.0)
DEFAULT_JITTER_ORDER = (0, 1, 2, 3)
OPTIONAL_AUGMENTATIONS = ("flip", "jitter", "gray", "blur", "solarize")
# the fields of `ViewParams` / `BatchViewParams` each augmentation's draw fills
AUGMENTATION_FIELDS: dict[str, tuple[str, ...]] = {
    "crop": ("crop",), "flip": ("flip",), "jitter": ("jitter", "factors", "order"), "gray": ("gray",),
    "blur": ("blur", "sigma"), "solarize": ("solarize",),
}


@dataclass(frozen=True)
class ViewParams:
    """Everything that was sampled to make one view; defaults are Appendix A.1's 'not applied'."""

    crop: tuple[int, int, int, int]  # x (left), y (top), width, height in input pixels
    flip: bool = False
    jitter: bool = False
    factors: tuple[float, float, float, float] = DEFAULT_JITTER_FACTORS  # b, c, s, h
    order: tuple[int, int, int, int] = DEFAULT_JITTER_ORDER
    gray: bool = False
    blur: bool = False
    sigma: float = 0.0
    solarize: bool = False


@dataclass(frozen=True)
class BatchViewParams:
    """The parameters of B views as tensors (row i is one `ViewParams`), as the batch-level sampler
    draws them: `crop` (B, 4) long x, y, w, h in input pixels; the flags `flip`, `jitter`, `gray`,
    `blur`, `solarize` bool (B,); `factors` (B, 4) b, c, s, h and `order` (B, 4) long (defaults where
    jitter is off); `sigma` (B,) (0 where blur is off)."""

    crop: torch.Tensor
    flip: torch.Tensor
    jitter: torch.Tensor
    factors: torch.Tensor
    order: torch.Tensor
    gray: torch.Tensor
    blur: torch.Tensor
    sigma: torch.Tensor
    solarize: torch.Tensor

    def __len__(self) -> int:
        return self.crop.shape[0]

    def _map(self, fn: Any) -> "BatchViewParams":
        return BatchViewParams(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def to(self, device: torch.device | str) -> "BatchViewParams":
        return self._map(lambda t: t.to(device))

    def select(self, index: torch.Tensor) -> "BatchViewParams":
        """The rows at `index` (a long or bool tensor)."""
        return self._map(lambda t: t[index])

    def with_draws_of(self, other: "BatchViewParams", augmentations: Iterable[str]) -> "BatchViewParams":
        """These parameters with the fields of `augmentations` (names of AUGMENTATION_FIELDS) taken from `other`."""
        taken = {name for aug in augmentations for name in AUGMENTATION_FIELDS[aug]}
        return BatchViewParams(**{f.name: getattr(other if f.name in taken else self, f.name) for f in fields(self)})

    def row(self, i: int) -> ViewParams:
        values = {f.name: getattr(self, f.name)[i].tolist() for f in fields(self)}
        return ViewParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@dataclass(frozen=True)
class AugmentationLayout:
    """Which optional augmentations a policy can apply, hence the layout of its Appendix A.1 vectors, and
    the encoding of `ViewParams` into them. (What a batch's `params` are, augmentation vectors or group
    elements, is `solo_equimod.data.param_spec.BatchParamsSpec`.)"""

    flip: bool = True
    jitter: bool = True
    gray: bool = True
    blur: bool = False
    solarize: bool = False
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        flags = [f"{aug}_applied" for aug in OPTIONAL_AUGMENTATIONS if getattr(self, aug)]
        numeric = ["crop_x", "crop_y", "crop_width", "crop_height"]
        if self.jitter:
            numeric += [f"{op}_factor" for op in JITTER_OPS]
            numeric += [f"jitter_order_{k}" for k in range(1, 5)]
        if self.blur:
            numeric.append("blur_sigma")
        object.__setattr__(self, "names", tuple(flags + numeric))

    @property
    def dim(self) -> int:
        return len(self.names)

    def groups(self) -> dict[str, list[int]]:
        """Component indices per augmentation (used by the equivariance and probing reports)."""
        out: dict[str, list[int]] = {"crop": [], "flip": [], "jitter": [], "gray": [], "blur": [], "solarize": []}
        for i, name in enumerate(self.names):
            if name.startswith("crop_"):
                out["crop"].append(i)
            elif name.startswith(("brightness", "contrast", "saturation", "hue", "jitter")):
                out["jitter"].append(i)
            elif name == "blur_sigma":
                out["blur"].append(i)
            else:
                out[name.removesuffix("_applied")].append(i)
        return {k: v for k, v in out.items() if v}

    def encode(self, p: ViewParams) -> list[float]:
        """The raw Appendix A.1 vector of one view."""
        vec = [float(getattr(p, aug)) for aug in OPTIONAL_AUGMENTATIONS if getattr(self, aug)]
        vec += [float(v) for v in p.crop]
        if self.jitter:
            factors = p.factors if p.jitter else DEFAULT_JITTER_FACTORS
            order = p.order if p.jitter else DEFAULT_JITTER_ORDER
            vec += [float(v) for v in factors] + [float(v) for v in order]
        if self.blur:
            vec.append(float(p.sigma) if p.blur else 0.0)
        return vec

    def encode_tensor(self, p: ViewParams) -> torch.Tensor:
        return torch.tensor(self.encode(p), dtype=torch.float32)

    def encode_batch(self, p: BatchViewParams) -> torch.Tensor:
        """The raw Appendix A.1 vectors of B views, (B, dim) float32 on the parameters' device:
        row i equals `encode(p.row(i))`."""
        columns = [getattr(p, aug)[:, None] for aug in OPTIONAL_AUGMENTATIONS if getattr(self, aug)] + [p.crop]
        columns = [c.to(torch.float32) for c in columns]
        if self.jitter:
            on = p.jitter[:, None]
            columns += [torch.where(on, p.factors.float(), p.factors.new_tensor(DEFAULT_JITTER_FACTORS).float()),
                        torch.where(on, p.order.float(), p.order.new_tensor(DEFAULT_JITTER_ORDER).float())]
        if self.blur:
            columns.append(torch.where(p.blur, p.sigma.float(), 0.0)[:, None])
        return torch.cat(columns, dim=1)

    def decode(self, vec: torch.Tensor | list[float]) -> ViewParams:
        """Inverse of `encode` (augmentations outside the layout come back as not applied)."""
        values = dict(zip(self.names, [float(v) for v in vec]))
        if len(values) != self.dim:
            raise ValueError(f"parameter vector has {len(list(vec))} components, layout {self.names} needs {self.dim}")
        flag = {aug: bool(round(values.get(f"{aug}_applied", 0.0))) for aug in OPTIONAL_AUGMENTATIONS}
        crop = tuple(int(round(values[k])) for k in ("crop_x", "crop_y", "crop_width", "crop_height"))
        factors, order = DEFAULT_JITTER_FACTORS, DEFAULT_JITTER_ORDER
        if self.jitter:
            factors = tuple(values[f"{op}_factor"] for op in JITTER_OPS)
            order = tuple(int(round(values[f"jitter_order_{k}"])) for k in range(1, 5))
        return ViewParams(
            crop=crop,  # type: ignore[arg-type]
            flip=flag["flip"],
            jitter=flag["jitter"],
            factors=factors,  # type: ignore[arg-type]
            order=order,  # type: ignore[arg-type]
            gray=flag["gray"],
            blur=flag["blur"],
            sigma=values.get("blur_sigma", 0.0),
            solarize=flag["solarize"],
        )
