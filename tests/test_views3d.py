"""The 3DIEBench loader and the factor bench against hand-made references: rotations from elementary
matrices, a tiny tree with known latents, the written factor bench read back, errors naming the file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from solo_equimod.data.factors3d import SHAPES, Factors3D, write_layout
from solo_equimod.data.rotations import euler_xyz_matrix, euler_xyz_quat, relative_quat
from solo_equimod.data.views3d import GROUPS, FolderObjects, ViewPairs


def elementary(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    i, j = (axis + 1) % 3, (axis + 2) % 3  # the cyclic pair: y rotates z towards x
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def reference_matrix(angles: np.ndarray) -> np.ndarray:
    """Extrinsic xyz: rotate about x, then the fixed y, then the fixed z."""
    return elementary(2, angles[2]) @ elementary(1, angles[1]) @ elementary(0, angles[0])


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def test_rotations_match_elementary_matrices_and_the_sign_convention() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        a1, a2 = rng.uniform(-np.pi / 2, np.pi / 2, (2, 3))
        assert np.allclose(euler_xyz_matrix(a1), reference_matrix(a1))
        assert np.allclose(quat_to_matrix(euler_xyz_quat(a1)), reference_matrix(a1))
        q = relative_quat(a1, a2)
        assert np.allclose(quat_to_matrix(q), reference_matrix(a1).T @ reference_matrix(a2))  # R1^-1 R2
        # the sign: conj(q1) * q2, i.e. scipy >= 1.11 (inv() negates the vector part), never canonicalised
        q1, q2 = euler_xyz_quat(a1), euler_xyz_quat(a2)
        w = q1[3] * q2[3] + q1[:3] @ q2[:3]
        assert q[3] == pytest.approx(w)
    assert np.allclose(relative_quat(np.array([0.4, -0.2, 1.0]), np.array([0.4, -0.2, 1.0])), [0, 0, 0, 1])
    s = math.sin(math.pi / 4)  # a quarter turn about x: (sin 45, 0, 0, cos 45)
    assert np.allclose(relative_quat(np.zeros(3), np.array([math.pi / 2, 0, 0])), [s, 0, 0, s])


def write_tree(root: Path, latents: dict[str, np.ndarray], all_latents: bool = False) -> Path:
    """`<synset>/<object>/image_k.jpg` whose pixels are 20 * k (so the view is readable back) and latent_k.npy."""
    for entry, lat in latents.items():
        (root / entry).mkdir(parents=True)
        for k, row in enumerate(lat):
            Image.fromarray(np.full((8, 8, 3), 20 * k, np.uint8)).save(root / entry / f"image_{k}.jpg", quality=100)
            np.save(root / entry / f"latent_{k}.npy", row)
    np.save(root / "train_images.npy", np.array([f"/{e}/" for e in latents]))
    np.save(root / "val_images.npy", np.array([f"/{next(iter(latents))}/"]))
    if all_latents:
        np.save(root / "all_latents_train.npy", np.concatenate(list(latents.values())))
    return root


@pytest.mark.parametrize("all_latents", [False, True])
def test_tiny_tree_pairs_carry_the_relative_rotation_and_colour_deltas(tmp_path: Path, all_latents: bool) -> None:
    rng = np.random.default_rng(1)
    latents = {e: rng.uniform(-1.5, 1.5, (4, 7)) for e in ("s2/b", "s1/a", "s2/c")}
    data = FolderObjects(write_tree(tmp_path, latents, all_latents), "train")
    assert data.classes == ["s1", "s2"] and data.targets == [1, 0, 1] and data.num_views == 4
    assert FolderObjects(tmp_path, "val").targets == [1]
    pairs = ViewPairs(data, GROUPS["rotcolor"], 8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    torch.manual_seed(0)
    for index, entry in enumerate(latents):
        for _ in range(3):
            sample = pairs[index]
            first, second = (round(float(v[0, 0, 0]) * 255 / 20) for v in sample["views"])
            assert first != second and sample["target"] == data.targets[index]
            lat = latents[entry]
            expected = np.concatenate([relative_quat(lat[first, :3], lat[second, :3]),
                                       lat[second, [3, 6]] - lat[first, [3, 6]]])
            assert np.allclose(sample["params"][1].numpy(), expected, atol=1e-6)
            assert np.allclose(sample["params"][0].numpy(), [0, 0, 0, 1, 0, 0], atol=1e-6)


def test_loader_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train_images.npy"):
        FolderObjects(tmp_path, "train")
    root = write_tree(tmp_path / "t", {"s/a": np.zeros((2, 7))})
    np.save(root / "s/a/latent_1.npy", np.zeros(9))
    with pytest.raises(ValueError, match=r"latent_1\.npy has shape \(9,\)"):
        FolderObjects(root, "train").latents(0)
    np.save(root / "train_images.npy", np.array(["/s/a/", "/s/missing/"]))
    with pytest.raises(FileNotFoundError, match="lists '/s/missing/'"):
        FolderObjects(root, "train")
    np.save(root / "train_images.npy", np.array(["/s/a/"]))
    np.save(root / "all_latents_train.npy", np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"all_latents_train\.npy has shape \(2, 5\)"):
        FolderObjects(root, "train")


def test_written_factor_bench_reads_back_as_3diebench(tmp_path: Path) -> None:
    write_layout(tmp_path, {"train": 1, "val": 1}, num_views=3, image_size=16)
    on_the_fly = Factors3D("train", objects=len(SHAPES), num_views=3, image_size=16)
    read = FolderObjects(tmp_path, "train")
    assert read.classes == list(SHAPES) and read.targets == on_the_fly.targets and read.num_views == 3
    assert len(np.load(tmp_path / "all_latents_val.npy")) == len(SHAPES) * 3
    for i in range(len(read)):
        assert np.array_equal(read.latents(i), on_the_fly.latents(i))
        jpeg, exact = (np.asarray(d.image(i, 2), float) for d in (read, on_the_fly))
        assert np.abs(jpeg - exact).mean() < 6  # JPEG quality 95, no chroma subsampling


def test_factor_bench_is_deterministic_rotated_in_3d_and_drawn_as_3diebench() -> None:
    data = Factors3D("train", objects=12, num_views=50)
    lat = np.concatenate([data.latents(i) for i in range(12)])
    assert (np.abs(lat[:, :3]) < np.pi / 2).all() and lat[:, :3].std(0).min() > 0.7  # U(-pi/2, pi/2): std 0.91
    assert (lat[:, 4] <= np.pi / 4).all() and (lat[:, 5] <= 2 * np.pi).all()
    assert np.array_equal(np.asarray(data.image(3, 7)), np.asarray(Factors3D("train", objects=12).image(3, 7)))
    # rotating about x alone changes the image: a true 3D rotation, not an in-plane one
    base = np.zeros(7)
    from solo_equimod.data.factors3d import render
    scale, palette = data._object(1)
    flat, tilted = (np.asarray(render("cube", scale, palette, base + d, 32), float)
                    for d in (np.zeros(7), np.array([0.8, 0, 0, 0, 0, 0, 0])))
    assert np.abs(flat - tilted).mean() > 5
