"""The renderer of the 3D factor bench: point-sampled surfaces of the six shapes, rotated, z-buffered
and Lambert-shaded over a floor/wall background (numpy only)."""

from __future__ import annotations

import colorsys
import functools
import math
import zlib
from typing import Callable

import numpy as np
from PIL import Image

from solo_equimod.data.rotations import euler_xyz_matrix
from solo_equimod.data.views3d import LATENT_NAMES

SHAPES: tuple[str, ...] = ("arrow", "cube", "cylinder", "lblock", "pyramid", "torus")  # sorted: class index order
POINTS = 4000
_SUPERSAMPLE = 1  # render at this multiple of the size, then box-filter


def _sample(rng: np.random.Generator, n: int, surfaces: list[tuple[float, Callable]]) -> tuple[np.ndarray, ...]:
    """n points on a union of surfaces (area, f(u, v) -> points, normals, part), area-weighted."""
    areas = np.array([a for a, _ in surfaces])
    counts = rng.multinomial(n, areas / areas.sum())
    pts, nrm, part = [], [], []
    for (_, surface), k in zip(surfaces, counts):
        p, q, c = surface(rng.random(k), rng.random(k))
        pts.append(p), nrm.append(q), part.append(np.broadcast_to(c, (k,)))
    return np.concatenate(pts), np.concatenate(nrm), np.concatenate(part).astype(int)


def _box(centre: tuple[float, float, float], half: tuple[float, float, float], part0: int) -> list[tuple[float, Callable]]:
    """The six faces of an axis-aligned box; face parts part0 + (0..5)."""
    faces = []
    for axis in range(3):
        for sign in (-1, 1):
            a, b = [k for k in range(3) if k != axis]

            def face(u: np.ndarray, v: np.ndarray, axis: int = axis, sign: int = sign, a: int = a, b: int = b):
                p = np.zeros((len(u), 3)) + centre
                p[:, axis] += sign * half[axis]
                p[:, a] += (2 * u - 1) * half[a]
                p[:, b] += (2 * v - 1) * half[b]
                n = np.zeros((len(u), 3))
                n[:, axis] = sign
                return p, n, part0 + 2 * axis + (sign > 0)
            faces.append((4 * half[a] * half[b], face))
    return faces


def _disc(z: float, radius: float, sign: int, part: int) -> tuple[float, Callable]:
    def disc(u: np.ndarray, v: np.ndarray):
        r, t = radius * np.sqrt(u), 2 * np.pi * v
        p = np.stack([r * np.cos(t), r * np.sin(t), np.full_like(u, z)], 1)
        return p, np.tile([0.0, 0.0, sign], (len(u), 1)), part
    return math.pi * radius**2, disc


def _cone(z0: float, z1: float, r0: float, r1: float, part: int, parts_around: int = 1) -> tuple[float, Callable]:
    """Lateral surface between radius r0 at z0 and r1 at z1 (a cylinder when r0 == r1)."""
    slope = (r0 - r1) / (z1 - z0)

    def lateral(u: np.ndarray, v: np.ndarray):
        z, t = z0 + (z1 - z0) * u, 2 * np.pi * v
        r = r0 + (r1 - r0) * u
        p = np.stack([r * np.cos(t), r * np.sin(t), z], 1)
        n = np.stack([np.cos(t), np.sin(t), np.full_like(u, slope)], 1)
        return p, n / np.linalg.norm(n, axis=1, keepdims=True), part + (v * parts_around).astype(int)
    return math.pi * (r0 + r1) * math.hypot(z1 - z0, r1 - r0), lateral


def _torus(u: np.ndarray, v: np.ndarray):
    big, small = 0.65, 0.3
    a, b = 2 * np.pi * u, 2 * np.pi * v
    n = np.stack([np.cos(a) * np.cos(b), np.sin(a) * np.cos(b), np.sin(b)], 1)
    p = np.stack([big * np.cos(a), big * np.sin(a), np.zeros_like(a)], 1) + small * n
    return p, n, (u * 4).astype(int)  # four coloured quarters: no rotational symmetry


def _pyramid_sides() -> list[tuple[float, Callable]]:
    apex, base = np.array([0.0, 0.0, 0.9]), np.array([[-0.7, -0.7, -0.5], [0.7, -0.7, -0.5], [0.7, 0.7, -0.5],
                                                      [-0.7, 0.7, -0.5]])
    sides = []
    for k in range(4):
        a, b = base[k], base[(k + 1) % 4]
        normal = np.cross(b - a, apex - a)
        area = np.linalg.norm(normal) / 2
        normal = normal / np.linalg.norm(normal)

        def side(u: np.ndarray, v: np.ndarray, a: np.ndarray = a, b: np.ndarray = b, normal: np.ndarray = normal,
                 k: int = k):
            flip = u + v > 1
            u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
            p = a + u[:, None] * (b - a) + v[:, None] * (apex - a)
            return p, np.tile(normal, (len(u), 1)), 1 + k
        sides.append((area, side))
    return sides


def _surfaces(shape: str) -> list[tuple[float, Callable]]:
    if shape == "cube":
        return _box((0, 0, 0), (0.6, 0.6, 0.6), 0)
    if shape == "lblock":
        return _box((0, -0.3, -0.45), (0.8, 0.3, 0.25), 0) + _box((-0.55, 0.35, 0.1), (0.25, 0.35, 0.8), 6)
    if shape == "pyramid":
        return [_box((0, 0, -0.5), (0.7, 0.7, 0.0), 0)[4]] + _pyramid_sides()  # the base: the box's -z face
    if shape == "cylinder":
        return [_cone(-0.7, 0.7, 0.45, 0.45, 0, parts_around=3), _disc(0.7, 0.45, 1, 3), _disc(-0.7, 0.45, -1, 4)]
    if shape == "arrow":
        return [_cone(-0.9, 0.2, 0.18, 0.18, 0, parts_around=2), _disc(-0.9, 0.18, -1, 2),
                _cone(0.2, 0.9, 0.5, 0.0, 3, parts_around=2), _disc(0.2, 0.5, -1, 5)]
    if shape == "torus":
        return [(1.0, _torus)]
    raise ValueError(f"unknown factors3d shape {shape!r}; valid: {SHAPES}")


@functools.cache
def _template(shape: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points, unit normals and part ids of a class, sampled once (seeded by the class name)."""
    return _sample(np.random.default_rng(zlib.crc32(shape.encode())), POINTS, _surfaces(shape))


def hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def draw_latents(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 7) latents as 3DIEBench: rotations U(-pi/2, pi/2)^3, floor hue U(0, 1), spot theta
    U(0, pi/4), spot phi U(0, 2 pi), spot hue U(0, 1)."""
    low = np.array([-np.pi / 2] * 3 + [0.0, 0.0, 0.0, 0.0])
    high = np.array([np.pi / 2] * 3 + [1.0, np.pi / 4, 2 * np.pi, 1.0])
    return low + (high - low) * rng.random((count, len(LATENT_NAMES)))


def render(shape: str, scale: np.ndarray, palette: np.ndarray, latent: np.ndarray, size: int) -> Image.Image:
    """One rendering: the object scaled per axis, rotated by R(latent[:3]) (extrinsic xyz), seen
    orthographically along -z by a camera at +z; Lambert shading from the spot direction."""
    points, normals, parts = _template(shape)
    rot = euler_xyz_matrix(latent[:3])
    p = (points * scale) @ rot.T
    n = (normals / scale) @ rot.T
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    big = size * _SUPERSAMPLE
    floor = np.array([hsv(latent[3], 0.35, 0.9), hsv(latent[3], 0.65, 0.6)])  # wall above, floor below
    image = np.repeat(floor[(np.arange(big) >= 0.62 * big).astype(int)][:, None, :], big, axis=1)
    theta, phi = latent[4], latent[5]
    light = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    lit = 0.35 + 0.65 * np.clip(n @ light, 0, None)[:, None] * hsv(latent[6], 0.5, 1.0)
    colour = palette[parts % len(palette)] * lit
    px = np.clip(((p[:, 0] / 2.4 + 0.5) * big).astype(int), 0, big - 1)
    py = np.clip(((0.5 - p[:, 1] / 2.4) * big).astype(int), 0, big - 1)
    order = np.lexsort((-p[:, 2], py * big + px))  # per pixel, nearest (largest z) first: a z-buffer
    pixel = (py * big + px)[order]
    first = np.unique(pixel, return_index=True)[1]
    flat = image.reshape(-1, 3)
    flat[pixel[first]] = colour[order[first]]
    small = flat.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, 3).mean(axis=(1, 3))
    return Image.fromarray(np.clip(small * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")
