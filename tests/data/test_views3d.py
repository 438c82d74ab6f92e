"""The 3DIEBench loader and the factor bench against hand-made references: rotations from elementary
matrices, a tiny tree with known latents, the written factor bench read back, errors naming the file."""

from __future__ import annotations

import math
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from solo_equimod.data.describe import dataset_image_sizes
from solo_equimod.data.factors3d import SHAPES, Factors3D, write_layout
from solo_equimod.data.images import CorruptImageError
from solo_equimod.data.rotations import euler_xyz_matrix, euler_xyz_quat, relative_quat
from solo_equimod.data.views3d import GROUPS, FolderObjects, ViewPairs
from solo_equimod.errors import ConfigError
from tests.conftest import snapshot
from tests.helpers.factors3d import three_objects, write_tree


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




def save_pickle(path: Path, value: object) -> None:
    with open(path, "wb") as f:
        pickle.dump(value, f)


# (how the tree is broken, the file the ConfigError must name, what else the message says)
BROKEN_TREES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "no split file": (lambda r: (r / "train_images.npy").unlink(), "train_images.npy", "does not exist"),
    "split file of objects": (lambda r: np.save(r / "train_images.npy", np.array(["/s/a/"], dtype=object)),
                              "train_images.npy", "is not a plain .npy array"),
    "split file a pickle": (lambda r: save_pickle(r / "train_images.npy", ["/s/a/"]), "train_images.npy",
                            "is not a plain .npy array"),
    "split file of numbers": (lambda r: np.save(r / "train_images.npy", np.arange(3)), "train_images.npy",
                              "holds a int64 array of shape (3,); expected a 1-d array of strings"),
    "listed folder missing": (lambda r: np.save(r / "train_images.npy", np.array(["/s/a/", "/s/gone/"])),
                              "train_images.npy", "lists '/s/gone/'"),
    "latent file missing": (lambda r: (r / "s/b/latent_1.npy").unlink(), "s/b/latent_1.npy",
                            "does not exist: each object needs image_k.jpg and latent_k.npy for k < 3"),
    "latent of 9 values": (lambda r: np.save(r / "t/c/latent_2.npy", np.zeros(9)), "t/c/latent_2.npy",
                           "holds a float64 array of shape (9,); expected (7,) floats"),
    "latent of objects": (lambda r: np.save(r / "s/a/latent_0.npy", np.array([None] * 7)), "s/a/latent_0.npy",
                          "holds a object array"),
    "latent a pickle": (lambda r: save_pickle(r / "s/a/latent_0.npy", [0.0] * 7), "s/a/latent_0.npy",
                        "is not a .npy array"),
    "image missing": (lambda r: (r / "t/c/image_1.jpg").unlink(), "t/c/image_1.jpg",
                      "(3 views, from most objects); 1 object(s) of train_images.npy miss files"),
    "object with fewer views": (lambda r: [(r / f"s/b/{n}_2.{x}").unlink() for n, x in (("image", "jpg"),
                                                                                        ("latent", "npy"))],
                                "s/b/image_2.jpg", "for k < 3 (3 views, from most objects)"),
    "all_latents with more views": (lambda r: np.save(r / "all_latents_train.npy", np.zeros((12, 7))),
                                    "s/a/image_3.jpg", "image_k.jpg for k < 4 (4 views, from all_latents_train.npy)"),
    "all_latents mis-shaped": (lambda r: np.save(r / "all_latents_train.npy", np.zeros((2, 5))),
                               "all_latents_train.npy", "holds a float64 array of shape (2, 5); expected (3 objects"),
}


@pytest.mark.parametrize("broken", list(BROKEN_TREES))
def test_broken_tree_is_a_config_error_naming_the_file_at_construction(tmp_path: Path, broken: str) -> None:
    root = three_objects(tmp_path)
    FolderObjects(root, "train")  # the intact tree builds
    breaks, name, says = BROKEN_TREES[broken]
    breaks(root)
    with pytest.raises(ConfigError, match=re.escape(str(root / name)) + ".*" + re.escape(says)):
        FolderObjects(root, "train")


def truncate(path: Path) -> None:
    """Cut a JPEG 20 bytes into its scan: the header reads, the pixels do not."""
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\xff\xda") + 20])


def test_unreadable_views_are_named_or_skipped_to_the_next_object(tmp_path: Path) -> None:
    root = three_objects(tmp_path)
    for k in range(3):  # every view of object 0 truncated: its header still reads, its pixels do not
        truncate(root / f"s/a/image_{k}.jpg")
    strict = FolderObjects(root, "train")
    pairs = ViewPairs(strict, GROUPS["rot"], 8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    for read in (lambda: strict[0], lambda: pairs[0]):
        with pytest.raises(CorruptImageError, match=re.escape(str(root / "s/a/image_")) + r"\d\.jpg.*truncated.*"
                           r"data.skip_corrupt=true"):
            read()
    skipping = FolderObjects(root, "train", skip_corrupt=True)
    with pytest.warns(UserWarning, match=re.escape(str(root / "s/a/image_"))):
        image, target = skipping[0]
    assert target == skipping.targets[1] and np.asarray(image).shape == (8, 8, 3)
    with pytest.warns(UserWarning, match=re.escape(str(root / "s/a/image_"))):
        sample = ViewPairs(skipping, GROUPS["rot"], 8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))[0]
    assert sample["index"] == 1 and sample["target"] == skipping.targets[1]


def test_sixteen_bit_and_garbage_views_are_refused_by_header_before_training(tmp_path: Path) -> None:
    root = three_objects(tmp_path)
    data = FolderObjects(root, "train")
    deep, garbage = root / "s/b" / f"image_{data.fixed_view(1)}.jpg", root / "t/c" / f"image_{data.fixed_view(2)}.jpg"
    Image.fromarray(np.full((8, 8), 4000, np.uint16)).save(deep, format="PNG")  # a 16-bit file named .jpg
    garbage.write_bytes(b"not an image")
    with pytest.raises(CorruptImageError, match=re.escape(repr(str(deep))) + r".*16-bit\) is not supported"):
        dataset_image_sizes(data)
    with pytest.raises(CorruptImageError, match=re.escape(repr(str(deep)))):
        data[1]
    with pytest.warns(UserWarning) as caught:
        sizes = dataset_image_sizes(FolderObjects(root, "train", skip_corrupt=True))
    warned = " ".join(str(w.message) for w in caught)
    assert sizes == [(8, 8)] and repr(str(deep)) in warned and repr(str(garbage)) in warned


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


def test_factor_bench_command_refuses_a_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    users = tmp_path / "data"
    users.mkdir()
    np.save(users / "train_images.npy", np.array(["/mine/0/"]))  # a user's split file
    before = snapshot(users)
    command = [sys.executable, "-m", "solo_equimod.data.factors3d", str(users), "--objects-per-class", "1", "1",
               "--views", "2", "--size", "8"]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    refused = subprocess.run(command, capture_output=True, text=True, cwd=repo, env=env)
    assert refused.returncode == 2 and snapshot(users) == before
    assert refused.stderr.splitlines()[-1].startswith(f"error: {users} is not empty (holds train_images.npy, ...)")
    assert "--overwrite" in refused.stderr and "Traceback" not in refused.stderr
    written = subprocess.run([*command, "--overwrite"], capture_output=True, text=True, cwd=repo, env=env)
    assert written.returncode == 0, written.stderr
    assert len(np.load(users / "train_images.npy")) == len(SHAPES)  # replaced, as asked
    fresh = tmp_path / "new"
    assert subprocess.run(command[:3] + [str(fresh)] + command[4:], cwd=repo, env=env).returncode == 0
    assert FolderObjects(fresh, "train").num_views == 2
    with pytest.raises(ConfigError, match="is not empty"):  # the library function refuses too
        write_layout(fresh, {"train": 1, "val": 1}, num_views=2, image_size=8)
