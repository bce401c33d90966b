"""Reading an NDF ``grid`` encoding at query points (for the decoders).

Conventions (shared with ``model.voxelise``):

- a volume is [B, C, R, R, R] with axes (D, H, W) = (z, y, x): ``volume[b, c, i, j, k]`` is the node at
  ``(x, y, z) = node(k), node(j), node(i)`` where ``node(t) = -h + 2h t / (R - 1)`` and ``h`` is the half extent
  (0.5: the unit cube). Nodes include both bounds, as NDF's ``linspace(-0.5, 0.5, R)`` grid, which is
  ``grid_sample``'s ``align_corners=True``; every volume, pooled or not, spans the same cube;
- query points [B, M, 3] are (x, y, z) in scene units; outside the cube the border value is used
  (``padding_mode="border"``, as NDF);
- the 7 sample positions are the point and 6 copies displaced by ``d`` (normalised grid units, i.e. ``d h`` in
  scene units) in the order of :data:`DISPLACEMENT_ORDER`: (0,0,0), -x, +x, -y, +y, -z, +z;
- the output [B, M, sum_i C_i x 7] is volume-major, then channel, then displacement: column
  ``offset_i + 7 c + j`` is channel c of volume i at displacement j (NDF's layout).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from . import DISPLACEMENT, HALF_EXTENT

# Unit displacement directions in (x, y, z), in output order.
DISPLACEMENT_ORDER = ((0, 0, 0), (-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1))


class FeatureVolumes(list):
    """The ``grid`` encoding: a plain list of volumes [B, C_i, R_i, R_i, R_i] that also carries how to read it
    (``displacement``, ``half_extent``), so :func:`sample_features` needs no configuration of its own."""

    def __init__(self, volumes: Sequence[torch.Tensor] = (), displacement: float = DISPLACEMENT,
                 half_extent: float = HALF_EXTENT) -> None:
        super().__init__(volumes)
        self.displacement = float(displacement)
        self.half_extent = float(half_extent)


def sample_positions(query: torch.Tensor, displacement: float = DISPLACEMENT,
                     half_extent: float = HALF_EXTENT) -> torch.Tensor:
    """Normalised sample positions [B, 7, M, 3] (grid_sample's (x, y, z) in [-1, 1]) of ``query`` [B, M, 3]."""
    offsets = torch.tensor(DISPLACEMENT_ORDER, dtype=query.dtype, device=query.device) * displacement  # [7, 3]
    return (query / half_extent).unsqueeze(1) + offsets.view(1, 7, 1, 3)


def sample_features(volumes: Sequence[torch.Tensor], query: torch.Tensor, displacement: float | None = None,
                    half_extent: float | None = None) -> torch.Tensor:
    """Trilinear features [B, M, 7 x sum_i C_i] of ``volumes`` at ``query`` [B, M, 3] and its 6 displaced
    copies (see the module docstring for the layout). ``displacement`` and ``half_extent`` default to the
    encoding's own (a :class:`FeatureVolumes`), else NDF's 0.0722 and 0.5. Differentiable in the volumes and
    in the query points."""
    if query.dim() != 3 or query.shape[-1] != 3:
        raise ValueError(f"ndf sampling: query points must be [B, M, 3], got {list(query.shape)}")
    if displacement is None:
        displacement = getattr(volumes, "displacement", DISPLACEMENT)
    if half_extent is None:
        half_extent = getattr(volumes, "half_extent", HALF_EXTENT)
    batch, n_query, _ = query.shape
    grid = sample_positions(query, displacement, half_extent).unsqueeze(1)  # [B, 1, 7, M, 3]
    features = []
    for volume in volumes:
        if volume.dim() != 5 or volume.shape[0] != batch:
            raise ValueError(f"ndf sampling: volumes must be [B={batch}, C, D, H, W], got {list(volume.shape)}")
        sampled = F.grid_sample(volume, grid.to(volume.dtype), mode="bilinear", padding_mode="border",
                                align_corners=True)  # [B, C, 1, 7, M]
        features.append(sampled.reshape(batch, volume.shape[1] * 7, n_query))
    return torch.cat(features, dim=1).transpose(1, 2)
