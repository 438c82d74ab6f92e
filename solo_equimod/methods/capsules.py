"""EquiCaps' projector (Konstantinou et al. 2025; AberdeenML/EquiCaps src/sr_capsnet.py): primary
capsules from the backbone's pre-pool feature map, then one self-routing layer (Hahn et al., NeurIPS
2019) whose kernel covers the whole map, giving `num_caps` capsules with an activation (the invariant
part) and a 3x3 pose matrix (the equivariant part)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SelfRouting(nn.Module):
    """Self-routing over a whole (H x W) map of `caps` capsules of `dim` numbers to `caps` output
    capsules of `dim` numbers (sr_capsnet.py SelfRouting2d with kernel = map size, no padding):
    for input capsule i (over the H*W*caps positions) and output j,
        r_ij = softmax_j(W2_i u_i + b2_ij),   u_hat_ij = W1_i u_i,
        a_j = sum_i a_i r_ij / sum_i a_i,     pose_j = sum_i (a_i r_ij / sum_i a_i r_ij) u_hat_ij.
    W1 starts Kaiming-normal, W2 and b2 at zero (every route equal), as the official layer."""

    def __init__(self, caps: int, dim: int, map_size: tuple[int, int]) -> None:
        super().__init__()
        self.caps, self.dim = caps, dim
        inputs = map_size[0] * map_size[1] * caps
        self.W1 = nn.Parameter(torch.empty(inputs, caps * dim, dim))
        nn.init.kaiming_normal_(self.W1)
        self.W2 = nn.Parameter(torch.zeros(inputs, caps, dim))
        self.b2 = nn.Parameter(torch.zeros(inputs, caps))

    def forward(self, a: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """a (B, caps, H, W), pose (B, caps * dim, H, W) -> activations (B, caps), poses (B, caps, dim)."""
        b, _, h, w = a.shape
        # input capsule i = (position, capsule), position-major as F.unfold orders a full-map kernel
        u = pose.view(b, self.caps, self.dim, h * w).permute(0, 3, 1, 2).reshape(b, -1, self.dim)
        a_in = a.view(b, self.caps, h * w).permute(0, 2, 1).reshape(b, -1, 1)
        u_hat = torch.einsum("iod,bid->bio", self.W1, u).view(b, -1, self.caps, self.dim)
        r = torch.softmax(torch.einsum("ijd,bid->bij", self.W2, u) + self.b2, dim=2)
        ar = a_in * r  # (B, inputs, caps)
        ar_sum = ar.sum(dim=1, keepdim=True)
        a_out = (ar_sum / a_in.sum(dim=1, keepdim=True)).squeeze(1)
        pose_out = ((ar / ar_sum).unsqueeze(-1) * u_hat).sum(dim=1)
        return a_out, pose_out


class CapsuleProjector(nn.Module):
    """sr_capsnet.py CapsNetNoStem: a = sigmoid(BN(conv3x3(map))), pose = BN(conv3x3(map)) (no biases),
    then `SelfRouting` over the whole map. Returns activations (B, caps), summing to 1 over the
    capsules, and pose matrices (B, caps, 3, 3)."""

    POSE = 3  # 3x3 pose matrices: the relative rotation acts on them (EquiCaps_3x3)

    def __init__(self, channels: int, caps: int, map_size: tuple[int, int]) -> None:
        super().__init__()
        dim = self.POSE * self.POSE
        self.conv_a = nn.Conv2d(channels, caps, 3, padding=1, bias=False)
        self.conv_pose = nn.Conv2d(channels, caps * dim, 3, padding=1, bias=False)
        self.bn_a, self.bn_pose = nn.BatchNorm2d(caps), nn.BatchNorm2d(caps * dim)
        self.routing = SelfRouting(caps, dim, map_size)

    def forward(self, feature_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.sigmoid(self.bn_a(self.conv_a(feature_map)))
        a_out, pose = self.routing(a, self.bn_pose(self.conv_pose(feature_map)))
        return a_out, pose.view(pose.shape[0], -1, self.POSE, self.POSE)


def quat_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) unit quaternions (x, y, z, w), scalar last as the loaders' group elements -> (..., 3, 3)
    rotation matrices (scipy's `Rotation.from_quat(q).as_matrix()`, which EquiCaps' dataset uses)."""
    x, y, z, w = F.normalize(q, dim=-1).unbind(-1)
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)
