"""A strict reader of OFF meshes as ModelNet distributes them.

Format: a line ``OFF``, a line ``<vertices> <faces> <edges>``, one ``x y z`` line per vertex, then one
``k i_1 ... i_k`` line per face (a polygon, fan-triangulated here; trailing colour values are ignored);
``#`` starts a comment. Many ModelNet files put the counts on the header line (``OFF3514 3546 0``), which
is accepted. Anything else (bad counts, a short or long file, an index out of range, an empty mesh) raises
a :class:`~harness.datacache.DataFileError` naming the file and line.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.datacache import DataFileError, numbered_lines, parse_rows


def read_off(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices [V,3] float64 and triangles [F,3] int64 of an OFF file."""
    rows = [(number, text.split("#", 1)[0]) for number, text in numbered_lines(path)]
    rows = [(number, text) for number, text in rows if text.strip()]
    if not rows or not rows[0][1].lstrip().startswith("OFF"):
        raise DataFileError(path, "not an OFF file: the first line must start with 'OFF'", rows[0][0] if rows else 1)
    number, header = rows[0]
    inline = header.lstrip()[3:].strip()  # counts glued to the header (ModelNet's quirk)
    if inline:
        counts_row, body = (number, inline), rows[1:]
    elif len(rows) > 1:
        counts_row, body = rows[1], rows[2:]
    else:
        raise DataFileError(path, "no '<vertices> <faces> <edges>' line after the header", number)
    n_vertices, n_faces, _ = parse_rows([counts_row], path, 3, dtype=int)[0]
    if n_vertices <= 0 or n_faces <= 0:
        raise DataFileError(path, f"empty mesh: {n_vertices} vertices, {n_faces} faces", counts_row[0])
    declared = f"the header declares {n_vertices} vertices and {n_faces} faces"
    if len(body) < n_vertices + n_faces:
        raise DataFileError(path, f"{declared}, but only {len(body)} lines follow it (truncated?)",
                            (body[-1] if body else counts_row)[0])
    if len(body) > n_vertices + n_faces:
        raise DataFileError(path, f"{declared}; this line is beyond them", body[n_vertices + n_faces][0])
    vertices = parse_rows(body[:n_vertices], path, 3)
    faces = _faces(body[n_vertices:], path)
    bad = np.flatnonzero((faces < 0).any(1) | (faces >= n_vertices).any(1))
    if len(bad):
        line = _face_lines(body[n_vertices:])[bad[0]]
        raise DataFileError(path, f"face index out of range 0..{n_vertices - 1}", line)
    return vertices, faces


def _face_lines(rows: list[tuple[int, str]]) -> list[int]:
    """The line of each triangle :func:`_faces` makes (a polygon's triangles share its line)."""
    lines = []
    for number, text in rows:
        lines += [number] * (int(text.split()[0]) - 2)
    return lines


def _faces(rows: list[tuple[int, str]], path: Path) -> np.ndarray:
    """Triangles of the face lines: numpy parses all-triangle files, polygons go line by line."""
    try:
        table = np.loadtxt([text for _, text in rows], dtype=np.int64, ndmin=2, comments=None)
    except ValueError:
        table = None
    if table is not None and table.shape == (len(rows), 4) and (table[:, 0] == 3).all():
        return table[:, 1:]
    triangles = []
    for number, text in rows:
        fields = text.split()
        try:
            values = [int(field) for field in fields]
        except ValueError:
            raise DataFileError(path, f"face line must hold integers: {text.strip()!r}", number) from None
        size = values[0]
        if size < 3 or len(values) < size + 1:
            raise DataFileError(path, f"face line must be 'k i_1 ... i_k' with k >= 3: {text.strip()!r}", number)
        corners = values[1:size + 1]
        triangles += [(corners[0], corners[i], corners[i + 1]) for i in range(1, size - 1)]
    return np.asarray(triangles, dtype=np.int64)
