"""Rotations of 3DIEBench's latents: extrinsic "xyz" Euler angles -> matrices and quaternions
(scalar last, as scipy), and the relative rotation quat(R1^-1 R2) SIE predicts from.

Written here rather than imported from scipy, which is not a dependency; the sign convention is
scipy >= 1.11's (`Rotation.inv()` negates the vector part): conj(q1) * q2, so equal angles give
(0, 0, 0, 1) and the quaternion is never sign-canonicalised (regression targets are not sign-blind).
"""

from __future__ import annotations

import numpy as np


def euler_xyz_matrix(angles: np.ndarray) -> np.ndarray:
    """R = Rz(c) Ry(b) Rx(a) for extrinsic x, y, z angles (a, b, c) (scipy's `from_euler("xyz")`); (..., 3, 3)."""
    a, b, c = (np.asarray(angles, dtype=np.float64)[..., k] for k in range(3))
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    return np.stack([
        np.stack([cc * cb, cc * sb * sa - sc * ca, cc * sb * ca + sc * sa], -1),
        np.stack([sc * cb, sc * sb * sa + cc * ca, sc * sb * ca - cc * sa], -1),
        np.stack([-sb, cb * sa, cb * ca], -1),
    ], -2)


def quat_multiply(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Hamilton product p * q of (x, y, z, w) quaternions (the rotation q first, then p)."""
    pv, pw, qv, qw = p[..., :3], p[..., 3:], q[..., :3], q[..., 3:]
    vector = pw * qv + qw * pv + np.cross(pv, qv)
    return np.concatenate([vector, pw * qw - (pv * qv).sum(-1, keepdims=True)], -1)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """The inverse of a unit quaternion with the vector part negated (scipy >= 1.11's `inv()`)."""
    return np.concatenate([-q[..., :3], q[..., 3:]], -1)


def euler_xyz_quat(angles: np.ndarray) -> np.ndarray:
    """quat(Rz(c) Ry(b) Rx(a)) = q_z * q_y * q_x, scalar last; (..., 4)."""
    angles = np.asarray(angles, dtype=np.float64)
    half = angles / 2
    out = None
    for axis in range(3):  # x first: out = q_axis * out
        q = np.zeros(angles.shape[:-1] + (4,))
        q[..., axis], q[..., 3] = np.sin(half[..., axis]), np.cos(half[..., axis])
        out = q if out is None else quat_multiply(q, out)
    return out


def relative_quat(angles_1: np.ndarray, angles_2: np.ndarray) -> np.ndarray:
    """quat(R1^-1 R2) = conj(q1) * q2: the rotation from view 1's pose to view 2's (SIE src/dataset.py)."""
    return quat_multiply(quat_conjugate(euler_xyz_quat(angles_1)), euler_xyz_quat(angles_2))
