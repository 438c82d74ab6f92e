"""The pretext transformations against hand-made references: E-SSL's rotations as the official
transpose/flip formulas, flips and inversion by indexing, grayscale by the ITU-R 601 weights, blur by
a naive Gaussian convolution, jigsaw undone by the inverse permutation; and the pipeline inputs
(the small rotated view, the task image with its label) as the same steps done by hand."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import default_collate

from solo_equimod.augment.per_image_applier import apply_view_params
from solo_equimod.augment.policy import policies_from_config
from solo_equimod.augment.pretext import (
    BLUR_KERNELS,
    JIGSAW_PERMUTATIONS,
    TASKS,
    blur,
    jigsaw,
    policy_variant,
    rotated_views,
    task_crop,
    task_sample,
)
from solo_equimod.augment.sampler import sample_view
from solo_equimod.config.schema import validate
from solo_equimod.data.pretrain import PretrainDataModule
from solo_equimod.objectives import OBJECTIVES
from solo_equimod.objectives.compose import pipeline_requests
from tests.conftest import tiny_pretrain_cfg

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _image(height: int = 32, width: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _normalised(image: torch.Tensor) -> torch.Tensor:
    return (image.float() / 255 - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def _official_rotation(image: torch.Tensor, k: int) -> torch.Tensor:
    """rdangovs/essl cifar10/main.py rotate_images, on one CHW image."""
    return [image, image.flip(-1).transpose(-2, -1), image.flip(-1).flip(-2), image.transpose(-2, -1).flip(-1)][k]


def test_rotation_labels_are_the_official_ones_and_torch_rot90() -> None:
    image = _image(16, 16)
    for k in range(4):
        out = TASKS["four_fold_rotation"].apply(image, k)
        assert torch.equal(out, _official_rotation(image, k))
        assert torch.equal(out, torch.rot90(image, k, dims=(1, 2)))
    corner = torch.zeros(1, 4, 4)
    corner[0, 0, 3] = 1  # top-right pixel; 90 degrees counter-clockwise moves it to the top-left
    assert TASKS["four_fold_rotation"].apply(corner, 1)[0, 0, 0] == 1


def test_two_class_tasks_against_hand_made_images() -> None:
    image = _image(8, 12)
    for task, expected in {"hflip": image[:, :, range(11, -1, -1)], "vflip": image[:, range(7, -1, -1), :],
                           "color_inversion": 255 - image}.items():
        assert torch.equal(TASKS[task].apply(image, 0), image)
        assert torch.equal(TASKS[task].apply(image, 1), expected), task
    gray = TASKS["grayscale"].apply(image, 1).float()
    luma = (0.2989 * image[0] + 0.587 * image[1] + 0.114 * image[2]).float()
    assert (gray - luma).abs().max() <= 1 and torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert torch.equal(TASKS["grayscale"].apply(image, 0), image)


def _naive_blur(image: torch.Tensor, kernel: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian (torchvision's kernel: exp(-x^2 / 2 sigma^2) on -k//2..k//2, normalised), reflect-padded."""
    x = torch.arange(kernel, dtype=torch.float64) - kernel // 2
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    w = w / w.sum()
    padded = F.pad(image.double()[None], [kernel // 2] * 4, mode="reflect")[0]
    out = torch.zeros(image.shape, dtype=torch.float64)
    for i in range(kernel):
        for j in range(kernel):
            out += w[i] * w[j] * padded[:, i:i + image.shape[1], j:j + image.shape[2]]
    return out


@pytest.mark.parametrize("label", [1, 2, 3])
def test_four_fold_blur_is_the_gaussian_of_its_kernel(label: int) -> None:
    image = _image(32, 32, seed=label)
    out = blur(image, label, sigma=1.3)
    reference = _naive_blur(image, BLUR_KERNELS[label - 1], 1.3)
    assert (out.double() - reference).abs().max() <= 1.0
    assert torch.equal(blur(image, 0), image)
    assert TASKS["four_fold_blur"].num_classes == 4 and BLUR_KERNELS == (5, 9, 15)


def test_jigsaw_undone_gives_the_image_back() -> None:
    assert len(set(JIGSAW_PERMUTATIONS)) == 24 and JIGSAW_PERMUTATIONS[0] == (0, 1, 2, 3)
    assert JIGSAW_PERMUTATIONS[23] == (3, 2, 1, 0) and JIGSAW_PERMUTATIONS[1] == (0, 1, 3, 2)  # the official jigsaw_dict
    image = _image(32, 32)
    outputs = set()
    for label, order in enumerate(JIGSAW_PERMUTATIONS):
        out = jigsaw(image, label)
        outputs.add(out.numpy().tobytes())
        tiles = [out[:, 16 * (k // 2):16 * (k // 2 + 1), 16 * (k % 2):16 * (k % 2 + 1)] for k in range(4)]
        restored = [None] * 4
        for k, source in enumerate(order):  # output tile k came from input tile order[k]
            restored[source] = tiles[k]
        undone = torch.cat([torch.cat(restored[:2], dim=2), torch.cat(restored[2:], dim=2)], dim=1)
        assert torch.equal(undone, image), label
    assert len(outputs) == 24
    assert torch.equal(jigsaw(image, 6)[:, :16, :16], image[:, :16, 16:])  # (1, 0, 2, 3): top tiles swapped


def test_rotated_views_are_the_four_rotations_of_one_small_view(tmp_path) -> None:
    policy = policy_variant(policies_from_config(tiny_pretrain_cfg("simclr", tmp_path, "simclr").augmentations)[0],
                            crop_size=16, crop_min_scale=0.2, crop_max_scale=1.0)
    image = _image(32, 32)
    torch.manual_seed(7)
    views = rotated_views(image, policy, MEAN, STD)
    torch.manual_seed(7)
    view = apply_view_params(image, sample_view(policy, 32, 32), policy)
    assert view.shape == (3, 16, 16) and len(views) == 4
    for k in range(4):
        torch.testing.assert_close(views[k], _normalised(_official_rotation(view, k)))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_task_sample_is_the_crop_then_the_task_with_a_uniform_label(task: str) -> None:
    image = _image(32, 32, seed=3)
    labels = []
    for seed in range(40):
        torch.manual_seed(seed)
        sample = task_sample(image, task, task_crop(task, 32, 0.08), MEAN, STD)
        labels.append(sample["label"])
        torch.manual_seed(seed)
        label = int(torch.randint(TASKS[task].num_classes, ()))
        cropped = task_crop(task, 32, 0.08)(image)
        if not TASKS[task].resized_crop:
            assert torch.equal(cropped, image)  # RandomCrop(32) of a 32 px image is the image
        if task != "four_fold_blur":  # blur draws its sigma after the label: checked above
            torch.testing.assert_close(sample["image"], _normalised(TASKS[task].apply(cropped, label)))
        assert sample["label"] == label
    assert set(labels) <= set(range(TASKS[task].num_classes)) and len(set(labels)) >= min(TASKS[task].num_classes, 10)


def test_the_pipeline_makes_the_extras_and_the_loader_collates_them(tmp_path) -> None:
    cfg = validate(tiny_pretrain_cfg("simclr", tmp_path, "simclr", objectives={
        "rotation": {}, "transform_prediction": {"task": "jigsaw"}}))
    datamodule = PretrainDataModule(cfg, pipeline_requests(cfg))
    sample = datamodule.train_dataloader().dataset[5]
    assert [tuple(v.shape) for v in sample["extras"]["rotation"]] == [(3, 16, 16)] * 4
    assert sample["extras"]["transform_prediction"]["image"].shape == (3, 32, 32)
    assert 0 <= sample["extras"]["transform_prediction"]["label"] < 24 and "original" not in sample
    batch = default_collate([datamodule.train_dataloader().dataset[i] for i in range(4)])
    assert batch["extras"]["transform_prediction"]["label"].shape == (4,)
    assert len(batch["extras"]["rotation"]) == 4 and batch["extras"]["rotation"][3].shape == (4, 3, 16, 16)
    assert OBJECTIVES["rotation"].encodes == ("extras.rotation",)
