"""Procedural indoor rooms with per-face ScanNet20 labels (metres, z up, the floor at z = 0).

A room is a ``width`` x ``depth`` rectangle of height ``height``:

* the floor (``floor``) and, with ``ceiling_probability``, a ceiling (labelled -1: ScanNet's 20 classes have
  none) are single sheets; the four walls (``wall``) are open sheets with rectangular holes for doors and
  windows, so the room mesh is not watertight, like a real reconstruction;
* a door (``door``) is a frame around its opening and, usually, an open leaf on its hinge; a window
  (``window``) is a frame (and a mullion) around a hole without glass -- depth cameras see through glass;
  curtains (``curtain``) may hang beside windows and pictures (``picture``) on the walls;
* furniture comes from the synthetic shape generator (:mod:`harness_plugins.datasets.synthetic_shapes`),
  scaled to plausible sizes: chair -> ``chair``, table -> ``table`` (a low coffee table in living rooms),
  bench with a back -> ``sofa`` (widened and deepened), bench without one -> ``otherfurniture``, lamp -> a floor
  lamp, ``otherfurniture``; mugs and bottles stand on tables, desks and counters as small props labelled -1
  (ScanNet's "otherprop" is outside its 20 classes); cars and airplanes are not room furniture. Boxes and
  panels make the rest: ``cabinet``, ``bed``, ``bookshelf``, ``desk``, ``counter``, ``refrigerator``,
  ``toilet``, ``sink``, ``bathtub`` (with an optional ``shower curtain``);
* what a room holds depends on its type (:data:`RECIPES`); objects go against a wall (their back to it) or
  free on the floor, or a chair pulled up to a desk or table, placed by rejection sampling of their 2D
  bounding boxes (no overlap with each other, with the swing of a door, or -- when taller than the sill -- with
  a window); their downward faces on the floor are dropped (the floor is there instead).

Everything is drawn from one generator, so a room is a pure function of its seed.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from harness_plugins.datasets.synthetic_shapes.generate import union_mesh
from harness_plugins.datasets.synthetic_shapes.shapes import BUILDERS, Primitive, box, cylinder

from ..scenes import SCANNET20

IGNORE = -1
LABELS = {name: index for index, name in enumerate(SCANNET20)}
# design frame (y up, front +z, back -z: the synthetic shapes' frame) -> room frame (z up, front -y, back +y)
DESIGN_TO_ROOM = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
SEAM = 1e-5  # vertices this close to an object's lowest level count as its bottom
GAP = 0.03  # between wall-standing objects and the wall
MARGIN = 0.05  # between objects' footprints
TRIES = 40  # placements tried per object before it is left out

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1
Group = tuple[str, list[Primitive]]  # (class name, or "" for ignored, and its primitives)


@dataclass
class Part:
    """One labelled piece of the room mesh."""

    kind: str
    vertices: np.ndarray  # [V,3] float64, room frame
    faces: np.ndarray  # [F,3] int64
    label: int


@dataclass
class Wall:
    origin: np.ndarray  # [2] start corner
    along: np.ndarray  # [2] unit direction of the wall
    inward: np.ndarray  # [2] unit normal into the room
    length: float
    openings: list[tuple[float, float, float, float]] = field(default_factory=list)  # s0, s1, z0, z1
    # (s0, s1, top): the extent along the wall of objects standing against it, and their height
    occupied: list[tuple[float, float, float]] = field(default_factory=list)

    def point(self, s: float, offset: float = 0.0) -> np.ndarray:
        return self.origin + self.along * s + self.inward * offset

    def yaw(self) -> float:
        """The yaw (radians) that turns an object's front (-y) into the room, its back to this wall."""
        return math.atan2(self.inward[1], self.inward[0]) + math.pi / 2


@dataclass
class Room:
    room_type: str
    width: float
    depth: float
    height: float
    parts: list[Part] = field(default_factory=list)
    footprints: list[Rect] = field(default_factory=list)  # floor objects, for collisions and camera poses
    supports: list[tuple[Rect, float]] = field(default_factory=list)  # table tops: (area, height)

    def mesh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(vertices [V,3] float64, faces [F,3] int64, face labels [F] int64)`` of the whole room."""
        vertices, faces, labels, offset = [], [], [], 0
        for part in self.parts:
            vertices.append(part.vertices)
            faces.append(part.faces + offset)
            labels.append(np.full(len(part.faces), part.label, dtype=np.int64))
            offset += len(part.vertices)
        return np.concatenate(vertices), np.concatenate(faces), np.concatenate(labels)

    def free(self, rect: Rect, ignore: Rect | None = None) -> bool:
        """Whether ``rect`` lies in the room and clear of every footprint (but ``ignore``)."""
        x0, y0, x1, y1 = rect
        if x0 < 0.01 or y0 < 0.01 or x1 > self.width - 0.01 or y1 > self.depth - 0.01:
            return False
        return not any(other is not ignore and _overlap(rect, other, MARGIN) for other in self.footprints)


def _overlap(a: Rect, b: Rect, margin: float) -> bool:
    return a[0] < b[2] + margin and b[0] < a[2] + margin and a[1] < b[3] + margin and b[1] < a[3] + margin


# ----- meshes ----------------------------------------------------------------------------------------------------


def oriented_box(centre: np.ndarray, axes: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A box mesh: ``axes`` [3,3] rows are its unit axes, ``half`` its half sizes along them."""
    corners = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], dtype=np.float64)
    vertices = centre + (corners * half) @ axes
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]], dtype=np.int64)
    return vertices, faces


def wall_box(wall: Wall, s0: float, s1: float, z0: float, z1: float, offset: float,
             thickness: float) -> tuple[np.ndarray, np.ndarray]:
    """A box along ``wall`` over ``[s0, s1] x [z0, z1]``, centred ``offset`` in front of it."""
    centre2 = wall.point((s0 + s1) / 2, offset)
    axes = np.array([[*wall.along, 0.0], [*wall.inward, 0.0], [0.0, 0.0, 1.0]])
    half = np.array([(s1 - s0) / 2, thickness / 2, (z1 - z0) / 2])
    return oriented_box(np.array([*centre2, (z0 + z1) / 2]), axes, half)


def sheet_with_holes(wall: Wall, height: float) -> tuple[np.ndarray, np.ndarray]:
    """The wall as an open sheet: a grid of rectangles over the breakpoints of its openings, less the
    rectangles inside an opening, two triangles each."""
    ss = sorted({0.0, wall.length, *(v for o in wall.openings for v in o[:2])})
    zs = sorted({0.0, height, *(min(v, height) for o in wall.openings for v in o[2:])})
    grid = np.array([[*wall.point(s), z] for s in ss for z in zs])
    faces = []
    for i in range(len(ss) - 1):
        for j in range(len(zs) - 1):
            sc, zc = (ss[i] + ss[i + 1]) / 2, (zs[j] + zs[j + 1]) / 2
            if any(o[0] < sc < o[1] and o[2] < zc < o[3] for o in wall.openings):
                continue
            a, b = i * len(zs) + j, (i + 1) * len(zs) + j
            faces += [[a, b, b + 1], [a, b + 1, a + 1]]
    return grid, np.array(faces, dtype=np.int64).reshape(-1, 3)


def rectangle(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two triangles over four corners in order."""
    return np.asarray(corners, dtype=np.float64), np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int64)


def solid(primitives: list[Primitive], scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of design-frame primitives, scaled per design axis and turned into the room frame (z up)."""
    vertices, faces = union_mesh(primitives, edge_length=2.0)  # 2 > any edge: no refinement
    return (vertices * scale) @ DESIGN_TO_ROOM.T, faces


def drop_bottom(vertices: np.ndarray, faces: np.ndarray, low: float) -> np.ndarray:
    """The faces but those facing down at height ``low`` (where the object stands on something)."""
    tri = vertices[faces]
    normal_z = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])[:, 2]
    bottom = (tri[:, :, 2] <= low + SEAM).all(axis=1) & (normal_z < 0)
    return faces[~bottom]


# ----- furniture (design frame: y up, front +z, back -z, centred on x and z, standing on y = 0) -------------------


def _shape(category: str) -> Callable[[np.random.Generator], list[Primitive]]:
    return BUILDERS[category]


def cabinet(rng: np.random.Generator) -> list[Group]:
    u = rng.uniform
    w, d, h = u(0.5, 1.2), u(0.4, 0.6), u(0.7, 2.0)
    prims = [Primitive("body", box((w, h - 0.08, d), (0, 0.08 + (h - 0.08) / 2, 0))),
             Primitive("body", box((w - 0.06, 0.09, d - 0.06), (0, 0.045, -0.02)))]  # recessed plinth
    doors = 1 if w < 0.7 else 2
    for k in range(doors):  # handles on the front
        x = (k - (doors - 1) / 2) * w / doors + (0.08 if doors == 1 else (0.06 if k == 0 else -0.06))
        prims.append(Primitive("body", box((0.02, 0.15, 0.04), (x, min(h * 0.6, 1.1), d / 2 + 0.01))))
    return [("cabinet", prims)]


def bed(rng: np.random.Generator) -> list[Group]:
    u = rng.uniform
    w, length = float(rng.choice([u(0.9, 1.1), u(1.35, 1.85)])), u(1.95, 2.15)
    frame_h, mattress = u(0.2, 0.35), u(0.15, 0.25)
    head_h, head_t = u(0.8, 1.2), 0.06
    prims = [Primitive("frame", box((w, frame_h, length), (0, frame_h / 2, 0))),
             Primitive("mattress", box((w - 0.04, mattress, length - 0.06),
                                       (0, frame_h + mattress / 2 - 0.01, 0.01))),
             Primitive("head", box((w + 0.04, head_h, head_t), (0, head_h / 2, -length / 2 - head_t / 2 + 0.01)))]
    top = frame_h + mattress - 0.02
    pillows = 1 if w < 1.2 else 2
    for k in range(pillows):
        x = (k - (pillows - 1) / 2) * w / pillows
        prims.append(Primitive("pillow", box((w / pillows - 0.12, 0.12, 0.4), (x, top + 0.05, -length / 2 + 0.3))))
    return [("bed", prims)]


def bookshelf(rng: np.random.Generator) -> list[Group]:
    u = rng.uniform
    w, d, h, t = u(0.6, 1.2), u(0.25, 0.4), u(1.2, 2.2), 0.025
    prims = [Primitive("side", box((t, h, d), (sx * (w / 2 - t / 2), h / 2, 0))) for sx in (-1, 1)]
    prims.append(Primitive("back", box((w, h, t), (0, h / 2, -d / 2 + t / 2))))
    shelves = int(rng.integers(3, 7))
    for k in range(shelves):  # bottom board, shelves, top board
        y = t / 2 + k * (h - t) / (shelves - 1)
        prims.append(Primitive("shelf", box((w - 0.01, t, d - 0.01), (0, y, 0))))
    return [("bookshelf", prims)]


def desk(rng: np.random.Generator) -> list[Group]:
    u = rng.uniform
    w, d, h, t = u(1.0, 1.6), u(0.55, 0.8), u(0.72, 0.76), u(0.025, 0.04)
    prims = [Primitive("top", box((w, t, d), (0, h - t / 2, 0)))]
    if rng.random() < 0.5:  # panel ends
        prims += [Primitive("side", box((0.03, h - t + 0.005, d - 0.04), (sx * (w / 2 - 0.03), (h - t) / 2, 0)))
                  for sx in (-1, 1)]
    else:
        leg = u(0.03, 0.05)
        prims += [Primitive("leg", box((leg, h - t + 0.005, leg),
                                       (sx * (w / 2 - leg), (h - t) / 2, sz * (d / 2 - leg))))
                  for sx in (-1, 1) for sz in (-1, 1)]
    if rng.random() < 0.6:  # a drawer block under one side
        dw = u(0.35, 0.45)
        side = rng.choice([-1, 1])
        prims.append(Primitive("drawers", box((dw, h - t - 0.1, d - 0.1), (side * (w / 2 - dw / 2 - 0.04),
                                                                            0.05 + (h - t - 0.1) / 2, 0))))
    return [("desk", prims)]


def counter(rng: np.random.Generator) -> list[Group]:
    u = rng.uniform
    w, d, h = u(1.2, 3.0), u(0.55, 0.65), u(0.88, 0.92)
    return [("counter", [Primitive("base", box((w, h - 0.04, d - 0.05), (0, (h - 0.04) / 2, -0.025))),
                         Primitive("top", box((w + 0.02, 0.045, d + 0.02), (0, h - 0.0225, 0)))])]


def refrigerator(rng: np.random.Generator) -> list[Group]:
    u = rng.uniform
    w, d, h = u(0.6, 0.9), u(0.6, 0.75), u(1.5, 2.0)
    split = h * u(0.3, 0.4)
    return [("refrigerator", [Primitive("body", box((w, h, d), (0, h / 2, 0))),
                              Primitive("handle", box((0.03, 0.4, 0.05), (w / 2 - 0.08, split + 0.3, d / 2 + 0.02))),
                              Primitive("handle", box((0.03, 0.25, 0.05), (w / 2 - 0.08, split - 0.2, d / 2 + 0.02)))])]


def toilet(rng: np.random.Generator) -> list[Group]:
    u = rng.uniform
    bowl_r, seat_h = u(0.17, 0.21), u(0.38, 0.44)
    tank_w, tank_d, tank_h = u(0.36, 0.45), u(0.15, 0.2), u(0.3, 0.4)
    tank_z = -bowl_r * 1.25 - tank_d / 2 + 0.08  # behind the bowl, overlapping it a little
    return [("toilet", [
        Primitive("base", cylinder(bowl_r * 0.6, seat_h - 0.1, (0, (seat_h - 0.1) / 2, 0.05))),
        Primitive("bowl", cylinder(bowl_r, 0.12, (0, seat_h - 0.06, 0.05)).scale((1.0, 1.0, 1.25))),
        Primitive("tank", box((tank_w, tank_h, tank_d), (0, seat_h + tank_h / 2 - 0.05, tank_z))),
        Primitive("tank", box((tank_w * 0.5, seat_h, tank_d), (0, seat_h / 2, tank_z)))])]


def sink(rng: np.random.Generator) -> list[Group]:
    u = rng.uniform
    w, d, h = u(0.5, 1.0), u(0.4, 0.5), u(0.8, 0.88)
    basin_w, basin_d, basin_h = w * u(0.5, 0.7), d * u(0.55, 0.7), u(0.1, 0.16)
    if rng.random() < 0.5:  # a vanity: cabinet with a basin cut into the top
        prims = [Primitive("body", box((w, h, d), (0, h / 2, 0)))]
    else:  # a pedestal under a basin block
        top_h = basin_h + 0.05
        prims = [Primitive("pedestal", cylinder(0.08, h - top_h + 0.01, (0, (h - top_h) / 2, 0))),
                 Primitive("body", box((w, top_h, d), (0, h - top_h / 2, 0)))]
    prims.append(Primitive("basin", box((basin_w, basin_h + 0.1, basin_d), (0, h - basin_h + 0.05, 0.02)),
                           subtract=True))
    return [("sink", prims)]


def bathtub(rng: np.random.Generator) -> list[Group]:
    u = rng.uniform
    w, d, h, rim = u(1.5, 1.8), u(0.7, 0.8), u(0.5, 0.6), 0.08
    groups: list[Group] = [("bathtub", [Primitive("tub", box((w, h, d), (0, h / 2, 0))),
                                        Primitive("tub", box((w - 2 * rim, h, d - 2 * rim), (0, h / 2 + rim, 0)),
                                                  subtract=True)])]
    if rng.random() < 0.7:  # a shower curtain hanging along the front edge, partly drawn
        length = w * u(0.3, 0.9)
        x = rng.choice([-1, 1]) * (w - length) / 2
        groups.append(("shower curtain", [Primitive("curtain", box((length, u(1.3, 1.5), 0.02),
                                                                    (x, h + 0.1 + 0.7, d / 2 - 0.03)))]))
    return groups


def chair(rng: np.random.Generator) -> list[Group]:
    return [("chair", _shape("chair")(rng))]


def table(rng: np.random.Generator) -> list[Group]:
    return [("table", _shape("table")(rng))]


def sofa(rng: np.random.Generator) -> list[Group]:
    prims = _shape("bench")(rng)
    return [("sofa" if any(p.part == "back" for p in prims) else "otherfurniture", prims)]


def lamp(rng: np.random.Generator) -> list[Group]:
    return [("otherfurniture", _shape("lamp")(rng))]


def prop(category: str) -> Callable[[np.random.Generator], list[Group]]:
    def build(rng: np.random.Generator) -> list[Group]:
        return [("", _shape(category)(rng))]  # ScanNet's "otherprop": outside the 20 classes
    return build


@dataclass(frozen=True)
class ObjectKind:
    """How one kind of object is built, sized and placed."""

    build: Callable[[np.random.Generator], list[Group]]
    # per-axis scale of the design (x, y, z) drawn from these ranges; height: scale to a total height instead
    scale: tuple[tuple[float, float], ...] = ((1.0, 1.0),) * 3
    height: tuple[float, float] | None = None
    xy_follow: float = 1.0  # with ``height``: the footprint scales by the height factor to this power
    placement: str = "wall"  # wall | free | near (a chair at a desk or table) | support (on a table top)
    support: bool = False  # its top holds props


KINDS: dict[str, ObjectKind] = {
    "bed": ObjectKind(bed),
    "cabinet": ObjectKind(cabinet),
    "bookshelf": ObjectKind(bookshelf),
    "desk": ObjectKind(desk, support=True),
    "counter": ObjectKind(counter, support=True),
    "refrigerator": ObjectKind(refrigerator),
    "toilet": ObjectKind(toilet),
    "sink": ObjectKind(sink),
    "bathtub": ObjectKind(bathtub),
    "sofa": ObjectKind(sofa, scale=((1.1, 1.3), (0.95, 1.1), (1.8, 2.2))),
    "table": ObjectKind(table, scale=((0.9, 1.1),) * 3, placement="free", support=True),
    "coffee_table": ObjectKind(table, scale=((0.8, 1.0), (0.5, 0.6), (0.8, 1.0)), placement="free", support=True),
    "chair": ObjectKind(chair, scale=((0.95, 1.1),) * 3, placement="near"),
    "armchair": ObjectKind(chair, scale=((1.3, 1.5), (0.95, 1.05), (1.3, 1.5)), placement="free"),
    "lamp": ObjectKind(lamp, height=(1.3, 1.8), xy_follow=0.4, placement="free"),
    "mug": ObjectKind(prop("mug"), height=(0.09, 0.12), placement="support"),
    "bottle": ObjectKind(prop("bottle"), height=(0.2, 0.32), placement="support"),
}

# room type -> (size ranges (width, depth, height), [(kind, least, most)] in placement order)
RECIPES: dict[str, tuple[tuple[tuple[float, float], ...], list[tuple[str, int, int]]]] = {
    "bedroom": (((3.0, 5.0), (3.0, 5.0), (2.4, 2.9)),
                [("bed", 1, 1), ("cabinet", 0, 2), ("desk", 0, 1), ("bookshelf", 0, 1), ("chair", 0, 1),
                 ("lamp", 0, 1), ("mug", 0, 1), ("bottle", 0, 1)]),
    "living_room": (((4.0, 7.0), (4.0, 6.5), (2.5, 3.1)),
                    [("sofa", 1, 2), ("bookshelf", 0, 2), ("cabinet", 0, 1), ("coffee_table", 1, 1),
                     ("armchair", 0, 2), ("lamp", 0, 2), ("mug", 0, 2), ("bottle", 0, 1)]),
    "office": (((3.5, 6.0), (3.5, 6.0), (2.5, 3.0)),
               [("desk", 1, 3), ("bookshelf", 0, 2), ("cabinet", 0, 2), ("table", 0, 1), ("chair", 1, 5),
                ("lamp", 0, 1), ("mug", 0, 2), ("bottle", 0, 2)]),
    "kitchen": (((3.0, 5.5), (3.0, 5.0), (2.4, 2.9)),
                [("counter", 1, 2), ("refrigerator", 1, 1), ("cabinet", 0, 2), ("table", 0, 1), ("chair", 0, 4),
                 ("mug", 0, 2), ("bottle", 0, 3)]),
    "bathroom": (((2.0, 3.5), (2.0, 3.5), (2.3, 2.7)),
                 [("bathtub", 0, 1), ("toilet", 1, 1), ("sink", 1, 1), ("cabinet", 0, 1), ("bottle", 0, 2)]),
}


def _label(name: str) -> int:
    return LABELS[name] if name else IGNORE


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class Object:
    """A built object in its own room-oriented frame (z up, front -y), centred on x/y, standing on z = 0."""

    kind: str
    pieces: list[tuple[int, np.ndarray, np.ndarray]]  # (label, vertices, faces)
    low: np.ndarray  # [3] bounding box
    high: np.ndarray

    def placed(self, yaw: float, at: np.ndarray) -> list[Part]:
        turn = _yaw_matrix(yaw)
        return [Part(self.kind, v @ turn.T + at, f, label) for label, v, f in self.pieces]

    def footprint(self, yaw: float, at: np.ndarray) -> Rect:
        corners = np.array([[x, y, 0.0] for x in (self.low[0], self.high[0]) for y in (self.low[1], self.high[1])])
        xy = (corners @ _yaw_matrix(yaw).T)[:, :2] + at[:2]
        return (*xy.min(axis=0), *xy.max(axis=0))


def build_object(kind_name: str, rng: np.random.Generator) -> Object:
    kind = KINDS[kind_name]
    groups = kind.build(rng)
    scale = np.array([rng.uniform(*r) for r in kind.scale])
    meshes = [(_label(name), *solid(prims, scale)) for name, prims in groups]
    everything = np.concatenate([v for _, v, _ in meshes])
    low, high = everything.min(axis=0), everything.max(axis=0)
    factor = np.ones(3)
    if kind.height is not None:
        up = rng.uniform(*kind.height) / (high[2] - low[2])
        factor = np.array([up ** kind.xy_follow, up ** kind.xy_follow, up])
    centre = np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2]])
    # the object stands on its lowest level: its downward faces there are hidden by what it stands on
    pieces = [(label, (v - centre) * factor, drop_bottom(v, f, low[2])) for label, v, f in meshes]
    return Object(kind_name, pieces, (low - centre) * factor, (high - centre) * factor)


# ----- the room ----------------------------------------------------------------------------------------------


def make_walls(width: float, depth: float) -> list[Wall]:
    corners = [(0.0, 0.0), (width, 0.0), (width, depth), (0.0, depth)]
    walls = []
    for k in range(4):
        start, end = np.array(corners[k]), np.array(corners[(k + 1) % 4])
        along = (end - start) / np.linalg.norm(end - start)
        walls.append(Wall(start, along, np.array([-along[1], along[0]]), float(np.linalg.norm(end - start))))
    return walls


def _fits(wall: Wall, s0: float, s1: float, gap: float) -> bool:
    return 0.25 <= s0 and s1 <= wall.length - 0.25 and not any(
        s0 < o[1] + gap and o[0] < s1 + gap for o in wall.openings)


def add_openings(room: Room, walls: list[Wall], rng: np.random.Generator) -> None:
    """Doors (frame, open leaf, swing kept clear) and windows (frame, mullion, optional curtains)."""
    u = rng.uniform
    small = room.room_type == "bathroom"
    doors = 1 + int(rng.random() < (0.0 if small else 0.3))
    windows = int(rng.integers(0, 2 if small else 4))
    for index in range(doors + windows):
        is_door = index < doors
        for _ in range(TRIES):
            wall = walls[int(rng.integers(4))]
            width = u(0.8, 1.0) if is_door else u(0.7, 1.8)
            if width > wall.length - 0.6:
                continue
            s0 = u(0.25, wall.length - 0.25 - width)
            z0, z1 = (0.0, min(u(2.0, 2.1), room.height - 0.15)) if is_door else (
                u(0.8, 1.0), min(u(1.9, 2.3), room.height - 0.15))
            if not _fits(wall, s0, s0 + width, 0.3):
                continue
            wall.openings.append((s0, s0 + width, z0, z1))
            (add_door if is_door else add_window)(room, wall, s0, s0 + width, z0, z1, rng)
            break


def add_door(room: Room, wall: Wall, s0: float, s1: float, z0: float, z1: float, rng: np.random.Generator) -> None:
    fw, depth = 0.05, 0.12
    label = LABELS["door"]
    for piece in (wall_box(wall, s0, s0 + fw, z0, z1, 0.0, depth), wall_box(wall, s1 - fw, s1, z0, z1, 0.0, depth),
                  wall_box(wall, s0, s1, z1 - fw, z1, 0.0, depth)):
        room.parts.append(Part("door", *piece, label))
    swing = s1 - s0
    if rng.random() < 0.8:  # an open leaf on its hinge, turned into the room
        angle = math.radians(rng.uniform(25.0, 100.0))
        leaf_w, leaf_t = swing - 2 * fw - 0.01, 0.04
        hinge_left = rng.random() < 0.5
        hinge_s = s0 + fw if hinge_left else s1 - fw
        direction = wall.along if hinge_left else -wall.along
        turned = direction * math.cos(angle) + wall.inward * math.sin(angle)
        hinge = wall.point(hinge_s, depth / 2)
        centre2 = hinge + turned * leaf_w / 2
        normal2 = np.array([-turned[1], turned[0]])
        axes = np.array([[*turned, 0.0], [*normal2, 0.0], [0.0, 0.0, 1.0]])
        room.parts.append(Part("door", *oriented_box(np.array([*centre2, (z1 - fw) / 2 + 0.005]), axes,
                                                     np.array([leaf_w / 2, leaf_t / 2, (z1 - fw - 0.01) / 2])), label))
    # keep the swing clear: a square in front of the opening
    a, b = wall.point(s0), wall.point(s1, swing)
    room.footprints.append((min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1])))


def add_window(room: Room, wall: Wall, s0: float, s1: float, z0: float, z1: float, rng: np.random.Generator) -> None:
    fw, depth = 0.05, 0.12
    label = LABELS["window"]
    pieces = [wall_box(wall, s0, s0 + fw, z0, z1, 0.0, depth), wall_box(wall, s1 - fw, s1, z0, z1, 0.0, depth),
              wall_box(wall, s0, s1, z0, z0 + fw, 0.0, depth + 0.06), wall_box(wall, s0, s1, z1 - fw, z1, 0.0, depth)]
    if s1 - s0 > 1.0 and rng.random() < 0.7:
        mid = (s0 + s1) / 2
        pieces.append(wall_box(wall, mid - fw / 2, mid + fw / 2, z0, z1, 0.0, depth * 0.6))
    room.parts += [Part("window", *piece, label) for piece in pieces]
    if room.room_type != "bathroom" and rng.random() < 0.5:  # a curtain drawn to each side
        top, bottom = min(z1 + 0.15, room.height - 0.02), 0.02 if rng.random() < 0.5 else max(z0 - 0.2, 0.02)
        for side in (-1, 1):
            width = rng.uniform(0.25, 0.5)
            a, b = (s0 - width * 0.6, s0 + width * 0.4) if side < 0 else (s1 - width * 0.4, s1 + width * 0.6)
            a, b = max(a, 0.02), min(b, wall.length - 0.02)
            room.parts.append(Part("curtain", *wall_box(wall, a, b, bottom, top, 0.1, 0.03), LABELS["curtain"]))
            if bottom < 1.0:
                p, q = wall.point(a, 0.085), wall.point(b, 0.115)
                room.footprints.append((min(p[0], q[0]), min(p[1], q[1]), max(p[0], q[0]), max(p[1], q[1])))
    wall.occupied.append((s0, s1, z0))  # tall furniture stays clear of the window


def place_against_wall(room: Room, walls: list[Wall], obj: Object,
                       rng: np.random.Generator) -> tuple[float, np.ndarray] | None:
    """A pose with the object's back to a wall (clear of the door swings, and of windows when taller than the
    sill), or None where none of the tries fits."""
    width, height = obj.high[0] - obj.low[0], obj.high[2]
    for _ in range(TRIES):
        wall = walls[int(rng.integers(4))]
        if width > wall.length - 0.04:
            continue
        s = rng.uniform(width / 2 + 0.02, wall.length - width / 2 - 0.02)
        s0, s1 = s - width / 2, s + width / 2
        if any(s0 < o[1] and o[0] < s1 and height > o[2] for o in wall.occupied):
            continue
        yaw = wall.yaw()
        # the back (+y, at obj.high[1]) against the wall, GAP in front of it
        at2 = wall.point(s, GAP + obj.high[1])
        at = np.array([*at2, 0.0])
        rect = obj.footprint(yaw, at)
        if room.free(rect):
            room.footprints.append(rect)
            wall.occupied.append((s0, s1, height))
            return yaw, at
    return None


def place_free(room: Room, obj: Object, rng: np.random.Generator) -> tuple[float, np.ndarray] | None:
    """A pose anywhere on the free floor, turned by a multiple of 90 degrees give or take 20."""
    for _ in range(TRIES):
        yaw = float(rng.integers(4)) * math.pi / 2 + math.radians(rng.uniform(-20.0, 20.0))
        at = np.array([rng.uniform(0.3, room.width - 0.3), rng.uniform(0.3, room.depth - 0.3), 0.0])
        rect = obj.footprint(yaw, at)
        if room.free(rect):
            room.footprints.append(rect)
            return yaw, at
    return None


def place_near(room: Room, obj: Object, targets: list[tuple[Rect, float, bool]],
               rng: np.random.Generator) -> tuple[float, np.ndarray] | None:
    """A chair pulled up to a desk (its front) or a table (any side), facing it; elsewhere if none has room."""
    for _ in range(TRIES if targets else 0):
        rect, yaw_target, front_only = targets[int(rng.integers(len(targets)))]
        cx, cy = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2
        if front_only:  # a desk's front is its local -y
            direction = np.array([math.sin(yaw_target), -math.cos(yaw_target)])
        else:
            direction = [np.array(d, dtype=float) for d in ((1, 0), (-1, 0), (0, 1), (0, -1))][int(rng.integers(4))]
        reach = abs(direction[0]) * (rect[2] - rect[0]) / 2 + abs(direction[1]) * (rect[3] - rect[1]) / 2
        along = np.array([-direction[1], direction[0]]) * rng.uniform(-0.25, 0.25) * (
            abs(direction[1]) * (rect[2] - rect[0]) + abs(direction[0]) * (rect[3] - rect[1]))
        distance = reach + (obj.high[1] - obj.low[1]) * rng.uniform(0.45, 0.7)
        at = np.array([*(np.array([cx, cy]) + direction * distance + along), 0.0])
        yaw = math.atan2(-direction[1], -direction[0]) + math.pi / 2 + math.radians(rng.uniform(-15.0, 15.0))
        chair_rect = obj.footprint(yaw, at)
        if room.free(chair_rect, ignore=rect):
            room.footprints.append(chair_rect)
            return yaw, at
    return place_free(room, obj, rng)


def generate_room(room_type: str, rng: np.random.Generator, ceiling_probability: float) -> Room:
    """A room of ``room_type``, all of it drawn from ``rng``."""
    sizes, recipe = RECIPES[room_type]
    width, depth, height = (rng.uniform(*r) for r in sizes)
    room = Room(room_type, width, depth, height)
    walls = make_walls(width, depth)
    add_openings(room, walls, rng)
    room.parts.append(Part("floor", *rectangle([[0, 0, 0], [width, 0, 0], [width, depth, 0], [0, depth, 0]]),
                           LABELS["floor"]))
    if rng.random() < ceiling_probability:
        room.parts.append(Part("ceiling", *rectangle([[0, 0, height], [width, 0, height], [width, depth, height],
                                                      [0, depth, height]]), IGNORE))
    for wall in walls:
        room.parts.append(Part("wall", *sheet_with_holes(wall, height), LABELS["wall"]))
    targets: list[tuple[Rect, float, bool]] = []  # desks and tables chairs can be pulled up to
    for kind_name, least, most in recipe:
        kind = KINDS[kind_name]
        for _ in range(int(rng.integers(least, most + 1))):
            obj = build_object(kind_name, rng)
            if kind.placement == "support":
                place_on_support(room, obj, rng)
                continue
            if kind.placement == "wall":
                pose = place_against_wall(room, walls, obj, rng)
            elif kind.placement == "near":
                pose = place_near(room, obj, targets, rng)
            else:
                pose = place_free(room, obj, rng)
            if pose is None:
                continue
            room.parts += obj.placed(*pose)
            rect = room.footprints[-1]
            if kind_name in ("desk", "table"):
                targets.append((rect, pose[0], kind_name == "desk"))
            if kind.support:
                top = float(max(v[:, 2].max() for _, v, _ in obj.pieces))
                shrink = 0.3 * (rect[2] - rect[0]), 0.3 * (rect[3] - rect[1])
                room.supports.append(((rect[0] + shrink[0], rect[1] + shrink[1], rect[2] - shrink[0],
                                       rect[3] - shrink[1]), top))
    add_pictures(room, walls, rng)
    return room


def place_on_support(room: Room, obj: Object, rng: np.random.Generator) -> None:
    if not room.supports:
        return
    rect, top = room.supports[int(rng.integers(len(room.supports)))]
    at = np.array([rng.uniform(rect[0], rect[2]), rng.uniform(rect[1], rect[3]), top])
    room.parts += obj.placed(float(rng.uniform(0, 2 * math.pi)), at)


def add_pictures(room: Room, walls: list[Wall], rng: np.random.Generator) -> None:
    for _ in range(int(rng.integers(0, 2 if room.room_type == "bathroom" else 4))):
        for _ in range(TRIES):
            wall = walls[int(rng.integers(4))]
            w, h = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8)
            z = min(rng.uniform(1.3, 1.7), room.height - h / 2 - 0.1)
            if w > wall.length - 0.4:
                continue
            s = rng.uniform(w / 2 + 0.2, wall.length - w / 2 - 0.2)
            s0, s1 = s - w / 2, s + w / 2
            if any(s0 < o[1] + 0.1 and o[0] < s1 + 0.1 for o in wall.openings):
                continue
            if any(s0 < o[1] and o[0] < s1 and z - h / 2 < o[2] for o in wall.occupied):
                continue
            room.parts.append(Part("picture", *wall_box(wall, s0, s1, z - h / 2, z + h / 2, 0.02, 0.03),
                                   LABELS["picture"]))
            wall.occupied.append((s0, s1, room.height))
            break
