"""A strict PLY reader for labelled scene meshes (ScanNet's ``_vh_clean_2.ply`` / ``.labels.ply``, SceneNN):
per-vertex properties by name (``x``, ``y``, ``z``, ``label``, ...) and triangulated faces.

trimesh drops or renames custom vertex properties and says little about a broken file; this reader keeps
every vertex property and raises :class:`~harness.datacache.DataFileError` naming the file (and, for the
header and ASCII bodies, the line) for anything it cannot read: a bad header, an unknown type, a truncated
body, a face index out of range. Formats: ``ascii``, ``binary_little_endian`` and ``binary_big_endian``.
Polygons with more than three corners are fanned into triangles. Faces given as triangle strips (a
``tristrips`` element, as some Stanford-era scanners write them) are triangulated too. Other elements are
read past and ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.datacache import DataFileError

TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
    "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}
FORMATS = {"ascii": None, "binary_little_endian": "<", "binary_big_endian": ">"}
FACE_LISTS = ("vertex_indices", "vertex_index")
STRIP_END = -1  # in a tristrips list: ends one strip and starts the next


@dataclass
class Property:
    name: str
    dtype: str  # numpy type code without byte order
    count_dtype: str | None = None  # list properties: the type of the count


@dataclass
class Element:
    name: str
    count: int
    line: int  # header line that declares it
    properties: list[Property] = field(default_factory=list)


@dataclass
class Ply:
    vertex: dict[str, np.ndarray]  # property name -> [V] array
    faces: np.ndarray  # [F,3] int64 (empty [0,3] if the file has none)

    def vertices(self, path: Path) -> np.ndarray:
        """[V,3] float64 positions; missing coordinates are an error naming the file."""
        missing = [axis for axis in "xyz" if axis not in self.vertex]
        if missing:
            raise DataFileError(path, f"vertex element has no {', '.join(missing)} properties "
                                      f"(it has {', '.join(self.vertex) or 'none'})")
        return np.stack([self.vertex[axis].astype(np.float64) for axis in "xyz"], axis=1)


def _header(data: bytes, path: Path) -> tuple[str | None, list[Element], int, int]:
    """(byte order or None for ASCII, elements, body offset, header line count)."""
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise DataFileError(path, "not a PLY file (no 'ply' magic line or no 'end_header')", 1)
    newline = data.find(b"\n", end)
    offset = len(data) if newline < 0 else newline + 1
    lines = data[:offset].decode("ascii", errors="replace").splitlines()
    order: str | None = None
    have_format = False
    elements: list[Element] = []
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0] in ("ply", "comment", "obj_info", "end_header"):
            continue
        if words[0] == "format":
            if len(words) < 2 or words[1] not in FORMATS:
                raise DataFileError(path, f"unknown format {line.strip()!r}; expected one of {list(FORMATS)}", number)
            order, have_format = FORMATS[words[1]], True
        elif words[0] == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise DataFileError(path, f"bad element line {line.strip()!r}", number)
            elements.append(Element(words[1], int(words[2]), number))
        elif words[0] == "property":
            if not elements:
                raise DataFileError(path, "property before any element", number)
            if len(words) == 5 and words[1] == "list" and words[2] in TYPES and words[3] in TYPES:
                elements[-1].properties.append(Property(words[4], TYPES[words[3]], TYPES[words[2]]))
            elif len(words) == 3 and words[1] in TYPES:
                elements[-1].properties.append(Property(words[2], TYPES[words[1]]))
            else:
                raise DataFileError(path, f"bad property line {line.strip()!r} (types: {sorted(TYPES)})", number)
        else:
            raise DataFileError(path, f"unexpected header line {line.strip()!r}", number)
    if not have_format:
        raise DataFileError(path, "no format line in the header")
    return order, elements, offset, len(lines)


def read_ply(path: str | Path) -> Ply:
    """The vertex properties and triangles of a PLY file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFileError(path, f"unreadable ({exc.strerror})") from exc
    order, elements, offset, header_lines = _header(data, path)
    if order is None:
        vertex, faces = _read_ascii(data[offset:], elements, header_lines, path)
    else:
        vertex, faces = _read_binary(data, offset, elements, order, path)
    if not vertex:
        raise DataFileError(path, "no vertex element")
    count = len(next(iter(vertex.values())))
    if len(faces) and (faces.min() < 0 or faces.max() >= count):
        raise DataFileError(path, f"face vertex index {int(faces.max() if faces.max() >= count else faces.min())} "
                                  f"outside 0..{count - 1}")
    return Ply(vertex, faces)


def _triangles(parts: list[np.ndarray]) -> np.ndarray:
    """[T,3] int64: the triangle arrays ``parts`` one after the other; [0,3] for none."""
    return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros((0, 3), np.int64)


def _fan(polygons: list[np.ndarray]) -> np.ndarray:
    """Triangles of polygons (fans from each one's first corner); [0,3] for none."""
    return _triangles([np.stack([p[np.zeros(len(p) - 2, int)], p[1:-1], p[2:]], axis=1)
                       for p in polygons if len(p) >= 3])


def _strips(lists: list[np.ndarray]) -> np.ndarray:
    """Triangles of triangle strips: ``v0 v1 v2 v3 v4 ...`` gives (v0,v1,v2), (v2,v1,v3), (v2,v3,v4), ... (every
    second one reversed, so all wind alike); ``STRIP_END`` ends a strip and the next starts afresh. Degenerate
    triangles (a repeated vertex: how strips are joined without ``STRIP_END``) are dropped. [0,3] for none."""
    triangles = []
    for indices in lists:
        for strip in np.split(indices, np.flatnonzero(indices == STRIP_END)):
            strip = strip[strip != STRIP_END]
            first, second, third = strip[:-2], strip[1:-1], strip[2:]
            odd = np.arange(len(third)) % 2 == 1
            triangles.append(np.stack([np.where(odd, second, first), np.where(odd, first, second), third], axis=1))
    found = _triangles(triangles)
    proper = (found[:, 0] != found[:, 1]) & (found[:, 1] != found[:, 2]) & (found[:, 0] != found[:, 2])
    return found[proper]


# elements whose vertex index lists are faces, and how they become triangles
TRIANGULATE = {"face": _fan, "tristrips": _strips}


def _face_list(element: Element, path: Path) -> Property:
    lists = [p for p in element.properties if p.count_dtype is not None and p.name in FACE_LISTS]
    if not lists:
        raise DataFileError(path, f"{element.name} element has no vertex_indices list property", element.line)
    return lists[0]


def _read_binary(data: bytes, offset: int, elements: list[Element], order: str,
                 path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    vertex: dict[str, np.ndarray] = {}
    faces: list[np.ndarray] = []
    for element in elements:
        if all(p.count_dtype is None for p in element.properties):
            dtype = np.dtype([(p.name, order + p.dtype) for p in element.properties])
            size = dtype.itemsize * element.count
            if offset + size > len(data):
                raise DataFileError(path, f"truncated: the {element.name} element needs {size} bytes, "
                                          f"{len(data) - offset} are left")
            table = np.frombuffer(data, dtype=dtype, count=element.count, offset=offset)
            offset += size
            if element.name == "vertex":
                vertex = {p.name: np.array(table[p.name]) for p in element.properties}
            continue
        # elements with list properties: the fast path assumes triangles (three corners in every list)
        fields = []
        for p in element.properties:  # interleave each list's count with its items
            if p.count_dtype:
                fields += [(p.name, order + p.count_dtype), (f"{p.name}__items", order + p.dtype, (3,))]
            else:
                fields.append((p.name, order + p.dtype))
        triangle = np.dtype(fields)
        size = triangle.itemsize * element.count
        table = None
        if offset + size <= len(data):
            table = np.frombuffer(data, dtype=triangle, count=element.count, offset=offset)
            if not all((table[p.name] == 3).all() for p in element.properties if p.count_dtype):
                table = None
        if table is not None:
            offset += size
            if element.name in TRIANGULATE:
                items = table[f"{_face_list(element, path).name}__items"].astype(np.int64)
                # three corners in every list: faces are the triangles themselves (and fast for millions)
                faces.append(items if element.name == "face" else _strips(list(items)))
            continue
        lists, offset = _binary_rows(data, offset, element, order, path)
        if element.name in TRIANGULATE:
            faces.append(TRIANGULATE[element.name](lists))
    return vertex, _triangles(faces)


def _binary_rows(data: bytes, offset: int, element: Element, order: str,
                 path: Path) -> tuple[list[np.ndarray], int]:
    """Row-by-row parse of an element with variable-length lists; returns its vertex index lists (for a face
    element, else none) and the offset after the element."""
    face_list = _face_list(element, path).name if element.name in TRIANGULATE else None
    polygons = []
    for row in range(element.count):
        for p in element.properties:
            if p.count_dtype is None:
                offset += np.dtype(p.dtype).itemsize
                continue
            count_type = np.dtype(order + p.count_dtype)
            if offset + count_type.itemsize > len(data):
                raise DataFileError(path, f"truncated: {element.name} {row} of {element.count} is incomplete")
            count = int(np.frombuffer(data, count_type, 1, offset)[0])
            offset += count_type.itemsize
            item_type = np.dtype(order + p.dtype)
            if offset + count * item_type.itemsize > len(data):
                raise DataFileError(path, f"truncated: {element.name} {row} of {element.count} is incomplete")
            items = np.frombuffer(data, item_type, count, offset).astype(np.int64)
            offset += count * item_type.itemsize
            if p.name == face_list:
                polygons.append(items)
    return polygons, offset


def _read_ascii(body: bytes, elements: list[Element], header_lines: int,
                path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DataFileError(path, f"ASCII PLY body is not text ({exc})") from exc
    lines = text.splitlines()
    rows = [(header_lines + number, line) for number, line in enumerate(lines, 1) if line.strip()]
    vertex: dict[str, np.ndarray] = {}
    faces: list[np.ndarray] = []
    position = 0
    for element in elements:
        chunk = rows[position:position + element.count]
        position += element.count
        if len(chunk) < element.count:
            raise DataFileError(path, f"truncated: the {element.name} element has {len(chunk)} of {element.count} "
                                      f"rows", header_lines + len(lines))
        if all(p.count_dtype is None for p in element.properties):
            if element.name == "vertex":
                table = _ascii_table(chunk, len(element.properties), path)
                vertex = {p.name: table[:, column].astype(p.dtype)
                          for column, p in enumerate(element.properties)}
            continue
        if element.name in TRIANGULATE:
            faces.append(TRIANGULATE[element.name](_ascii_lists(chunk, element, path)))
    return vertex, _triangles(faces)


def _ascii_table(chunk: list[tuple[int, str]], columns: int, path: Path) -> np.ndarray:
    from harness.datacache import parse_rows

    return parse_rows(chunk, path, columns)


def _ascii_lists(chunk: list[tuple[int, str]], element: Element, path: Path) -> list[np.ndarray]:
    face_list = _face_list(element, path).name
    polygons = []
    for number, line in chunk:
        words = line.split()
        position = 0
        for p in element.properties:
            try:
                if p.count_dtype is None:
                    float(words[position])
                    position += 1
                    continue
                count = int(words[position])
                items = np.array([int(w) for w in words[position + 1:position + 1 + count]], dtype=np.int64)
            except (ValueError, IndexError):
                raise DataFileError(path, f"bad {element.name} row {line.strip()!r}", number) from None
            if len(items) != count:
                raise DataFileError(path, f"{element.name} row lists {count} items but has {len(items)}: "
                                          f"{line.strip()!r}", number)
            position += 1 + count
            if p.name == face_list:
                polygons.append(items)
        if position != len(words):
            raise DataFileError(path, f"{element.name} row has {len(words) - position} extra values: "
                                      f"{line.strip()!r}", number)
    return polygons
