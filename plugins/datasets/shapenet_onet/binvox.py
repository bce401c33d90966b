"""A reader of binvox voxel grids (ShapeNetCore.v2's ``model_normalized.solid.binvox``).

Format: text header lines ``#binvox 1``, ``dim D D D``, ``translate tx ty tz``, ``scale s`` (in any order),
then ``data`` and the voxels run-length encoded as (value, count) byte pairs. Voxel ``(x, y, z)`` is at
position ``x * D*D + z * D + y`` of the decoded sequence (y runs fastest, then z, then x), and covers the
cube ``translate + [x, x + 1] * scale / D`` (and likewise in y and z) of the model's frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.datacache import DataFileError


@dataclass(frozen=True)
class VoxelGrid:
    occupied: np.ndarray  # bool [D, D, D], indexed [x, y, z]
    translate: np.ndarray  # float64 [3]: the grid's minimum corner
    scale: float  # the grid's side length

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean [P]: whether each point (model frame) lies in an occupied voxel; outside the grid is empty."""
        size = self.occupied.shape[0]
        cells = np.floor((np.asarray(points, dtype=np.float64) - self.translate) / self.scale * size).astype(np.int64)
        inside = ((cells >= 0) & (cells < size)).all(axis=1)
        result = np.zeros(len(cells), dtype=bool)
        result[inside] = self.occupied[tuple(cells[inside].T)]
        return result


def read_binvox(path: Path) -> VoxelGrid:
    """Parse a binvox file; a malformed header or a run-length stream that does not fill the grid raises a
    :class:`~harness.datacache.DataFileError` naming the file (and the header line)."""
    with open(path, "rb") as stream:
        if stream.readline().strip() != b"#binvox 1":
            raise DataFileError(path, "not a binvox file: the first line must be '#binvox 1'", 1)
        fields: dict[bytes, list[bytes]] = {}
        number = 1
        while True:
            number += 1
            line = stream.readline()
            if not line:
                raise DataFileError(path, "header ends without a 'data' line", number)
            if not line.strip():
                continue
            key, *values = line.split()
            if key == b"data":
                break
            fields[key] = values
            expected = {b"dim": 3, b"translate": 3, b"scale": 1}.get(key)
            if expected is None:
                raise DataFileError(path, f"unknown header line {line.strip().decode(errors='replace')!r}", number)
            try:
                numbers = [float(v) for v in values]
            except ValueError:
                numbers = []
            if len(numbers) != expected or not np.isfinite(numbers).all():
                raise DataFileError(path, f"header line {line.strip().decode(errors='replace')!r} needs {expected} "
                                          f"numbers", number)
        runs = np.frombuffer(stream.read(), dtype=np.uint8)
    missing = [key.decode() for key in (b"dim", b"translate", b"scale") if key not in fields]
    if missing:
        raise DataFileError(path, f"header lacks {missing}")
    dims = [int(v) for v in fields[b"dim"]]
    if len(set(dims)) != 1 or dims[0] < 1:
        raise DataFileError(path, f"only cubic grids are supported, got dim {dims}")
    size = dims[0]
    values, counts = runs[0::2], runs[1::2]
    if len(runs) % 2 or (values > 1).any() or (counts == 0).any() or counts.sum(dtype=np.int64) != size ** 3:
        raise DataFileError(path, f"voxel data is not (value 0/1, count >= 1) byte pairs covering {size}^3 voxels "
                                  f"(truncated or corrupt)")
    occupied = np.repeat(values.astype(bool), counts).reshape(size, size, size).transpose(0, 2, 1)
    return VoxelGrid(occupied, np.array([float(v) for v in fields[b"translate"]]), float(fields[b"scale"][0]))
