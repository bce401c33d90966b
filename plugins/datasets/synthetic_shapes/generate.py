"""One synthetic shape, from its seed to the arrays the cache stores.

Labelling definitions (the same for every category):

* mesh vertices take the part of the primitive whose surface is nearest (exactly zero away except on
  the curves where two primitives meet);
* every other point takes the part of its nearest mesh vertex, i.e. the interior is split into the
  Voronoi cells of the labelled vertices. This labels surface samples and the occupancy samples that
  are inside; outside samples get ``IGNORE_INDEX``. ``edge_length`` keeps the vertices dense enough for
  the cells to follow the part boundaries.
"""
from __future__ import annotations

import zlib

import igl
import numpy as np
from manifold3d import Manifold, OpType
from scipy.spatial import cKDTree

from harness.data import IGNORE_INDEX
from harness.geometry.inside import contains
from harness.geometry.mesh import normalize_mesh, sample_queries, sample_surface

from .config import SyntheticShapesConfig
from .render import render_views
from .shapes import BUILDERS, Primitive
from .vocab import CATEGORY_PARTS, part_vocabulary

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def shape_category(config: SyntheticShapesConfig, index: int) -> int:
    """Categories interleave (index i has class i mod C), so any prefix of a split is class-balanced."""
    return index % len(config.categories)


def shape_seed(config: SyntheticShapesConfig, split: str, index: int) -> np.random.SeedSequence:
    """Seeded by the category name, not its position, so a shape does not change when categories are added."""
    category = config.categories[shape_category(config, index)]
    instance = index // len(config.categories)
    return np.random.SeedSequence(config.seed, spawn_key=(SPLIT_IDS[split], zlib.crc32(category.encode()), instance))


def _mesh_arrays(solid: Manifold) -> tuple[np.ndarray, np.ndarray]:
    mesh = solid.to_mesh64()
    return np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3], np.asarray(mesh.tri_verts, dtype=np.int64)


def union_mesh(primitives: list[Primitive], edge_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Watertight mesh of the primitives' union minus the subtracting ones, refined to ``edge_length`` relative
    to its longest side. Returns float64 vertices (design frame) and int64 faces."""
    solid = Manifold.batch_boolean([p.solid for p in primitives if not p.subtract], OpType.Add)
    cutters = [p.solid for p in primitives if p.subtract]
    if cutters:
        solid = Manifold.batch_boolean([solid, *cutters], OpType.Subtract)
    bounds = np.asarray(solid.bounding_box()).reshape(2, 3)
    return _mesh_arrays(solid.refine_to_length(edge_length * float(np.ptp(bounds, axis=0).max())))


def nearest_primitive(points: np.ndarray, primitives: list[Primitive]) -> np.ndarray:
    """Index of the primitive whose surface is nearest to each point (ties: the first)."""
    distances = [igl.point_mesh_squared_distance(points, *_mesh_arrays(p.solid))[0] for p in primitives]
    return np.argmin(np.stack(distances), axis=0)


def design_shape(config: SyntheticShapesConfig, split: str, index: int
                 ) -> tuple[str, list[Primitive], np.random.Generator]:
    """The category and primitives of a shape, and the generator its samples are drawn with."""
    category = config.categories[shape_category(config, index)]
    design_rng, sample_rng = (np.random.default_rng(s) for s in shape_seed(config, split, index).spawn(2))
    return category, BUILDERS[category](design_rng), sample_rng


def generate_shape(config: SyntheticShapesConfig, split: str, index: int) -> dict[str, np.ndarray]:
    """All stored arrays of shape ``index`` of ``split``; a pure function of the generation parameters."""
    category, primitives, sample_rng = design_shape(config, split, index)
    design_vertices, faces = union_mesh(primitives, config.edge_length)

    _, parts_per_class = part_vocabulary(config.categories)
    part_ids = np.asarray(parts_per_class[category])
    local = np.array([CATEGORY_PARTS[category].index(p.part) for p in primitives])
    vertex_part = part_ids[local[nearest_primitive(design_vertices, primitives)]]

    normalized, loc, scale = normalize_mesh(design_vertices)
    vertices = normalized.astype(np.float32)  # the stored mesh: every sample below comes from exactly it
    surface, normals, _ = sample_surface(vertices, faces, config.n_surface, sample_rng)
    occ_points = sample_queries(vertices, faces, config.n_occupancy, sample_rng, padding=config.padding,
                                near_fraction=config.near_fraction, near_sigma=config.near_sigma)
    occupancy = np.asarray(contains(vertices, faces, occ_points, watertight=True), dtype=bool)

    # the views draw from their own child of the shape's seed (design and samples use the first two), so
    # they do not move when the sample counts change
    view_rng = np.random.default_rng(shape_seed(config, split, index).spawn(3)[2])
    azimuths = view_rng.uniform(0.0, 360.0, config.views)
    focal = config.view_focal * config.image_size
    views = render_views(vertices, faces, azimuths, config.view_elevation, config.view_radius, focal,
                         config.image_size)

    tree = cKDTree(vertices)
    occ_part = np.full(len(occ_points), IGNORE_INDEX, dtype=np.int16)
    occ_part[occupancy] = vertex_part[tree.query(occ_points[occupancy])[1]]
    return {
        "vertices": vertices,
        "faces": faces.astype(np.int32),
        "vertex_part": vertex_part.astype(np.int16),
        "surface": surface,
        "normals": normals,
        "surface_part": vertex_part[tree.query(surface)[1]].astype(np.int16),
        "occ_points": occ_points,
        "occupancy": occupancy,
        "occ_part": occ_part,
        "n_uniform": np.int64(config.n_uniform),  # the first n_uniform occ_points are uniform in the box
        "label": np.int64(shape_category(config, index)),
        "loc": np.asarray(loc, dtype=np.float64),  # design frame = vertices * scale + loc
        "scale": np.float64(scale),
        "views": views,  # uint8 [V, H, W] grey, see .render
        "view_azimuth": azimuths,  # degrees, per view
        "view_elevation": np.float64(config.view_elevation),  # degrees
        "view_radius": np.float64(config.view_radius),
        "view_focal": np.float64(focal),  # pixels
    }
