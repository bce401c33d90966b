"""Vectorised procedural rendering of textured shapes over cluttered backgrounds (numpy only).

A *scene* is one shape (one of :data:`SHAPES`, defined in local coordinates that fit the unit disc) with a
pose per frame (centre in pixels, rotation, radius in pixels), a textured fill that moves with the shape
(stripes, checks, smooth noise or none, between two colours), a static background (a two-colour gradient
plus smooth colour noise), static clutter (strokes and blobs of random colour, each drawn under or over the
shape) and per-frame Gaussian pixel noise. Images are single-frame scenes; :mod:`..synthetic_videos` moves
the shape over frames.

Each scene's parameters are drawn by :func:`draw_scene` from a generator of its own, so a scene depends only on
its seed; :func:`render` then draws a whole batch at once: every array is ``[scene, frame, ...]`` and there are
no per-pixel Python loops (the only loops are over the ten shape kinds, four texture kinds and the clutter
slots). Edges are anti-aliased by rendering ``supersample`` x ``supersample`` samples per pixel and averaging.
Coordinates are in pixels, x to the right and y down, so a positive rotation turns clockwise on screen.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "ellipse", "diamond", "crescent", "arrow")
TEXTURES = ("solid", "stripes", "checks", "noise")
TEXTURE_GRID = 5  # smooth-noise texture: control points per side, spread over the shape's unit disc
BACKGROUND_GRID = 4  # smooth background noise: control points per side over the image

Array = np.ndarray


# ----- shapes (local coordinates: the shape fits the unit disc) -------------------------------------------------


def _star(u: Array, v: Array, points: int = 5, inner: float = 0.45) -> Array:
    """A regular star polygon with its outer vertices on the unit circle."""
    sector = 2 * np.pi / points
    phi = np.mod(np.arctan2(v, u), sector)
    phi = np.minimum(phi, sector - phi)  # fold onto [0, sector/2]: outer vertex at 0, inner at sector/2
    ax, ay = 1.0, 0.0
    bx, by = inner * np.cos(sector / 2), inner * np.sin(sector / 2)
    # radius of the edge A-B along direction (cos phi, sin phi): r = (A x B) / (d x (B - A))
    edge = (ax * by - ay * bx) / (np.cos(phi) * (by - ay) - np.sin(phi) * (bx - ax))
    return u * u + v * v <= edge * edge


def _arrow(u: Array, v: Array) -> Array:
    shaft = (u >= -0.9) & (u <= 0.15) & (np.abs(v) <= 0.18)
    head = (u >= 0.15) & (u <= 0.95) & (np.abs(v) <= 0.6 * (0.95 - u) / 0.8)
    return shaft | head


INSIDE: dict[str, Callable[[Array, Array], Array]] = {
    "circle": lambda u, v: u * u + v * v <= 0.8 ** 2,
    "square": lambda u, v: np.maximum(np.abs(u), np.abs(v)) <= 0.62,
    "triangle": lambda u, v: (v >= -0.5) & (v <= 1 - np.sqrt(3) * np.abs(u)),  # equilateral, circumradius 1
    "star": _star,
    "cross": lambda u, v: ((np.abs(u) <= 0.24) & (np.abs(v) <= 0.9)) | ((np.abs(v) <= 0.24) & (np.abs(u) <= 0.9)),
    "ring": lambda u, v: (u * u + v * v <= 0.85 ** 2) & (u * u + v * v >= 0.5 ** 2),
    "ellipse": lambda u, v: (u / 0.92) ** 2 + (v / 0.46) ** 2 <= 1,
    "diamond": lambda u, v: np.abs(u) / 0.95 + np.abs(v) / 0.55 <= 1,  # a rhombus, not a turned square
    "crescent": lambda u, v: (u * u + v * v <= 0.85 ** 2) & ((u - 0.42) ** 2 + v * v >= 0.68 ** 2),
    "arrow": _arrow,
}
assert tuple(INSIDE) == SHAPES


# ----- scene parameters ----------------------------------------------------------------------------------------


def draw_scene(rng: np.random.Generator, shape: int, size: int, frames: int, clutter: int, occlusion: float,
               noise: float) -> dict[str, Array]:
    """The appearance of one scene (shape ``shape``, pose at rest): every array :func:`render` needs except the
    per-frame pose, which the caller sets (``cx``, ``cy``, ``angle``, ``radius``: ``[frames]`` each)."""
    u = rng.random(32)  # the scalar parameters, in one call
    slots = max(clutter, 1)
    c = rng.random((slots, 10))  # per clutter slot
    # the shape's two fill colours differ from the background's mean colour by 0.25-0.75 in every channel
    # (modulo 1), so the shape stands out (but not always from the gradient's ends, the clutter or the noise)
    middle = (u[12:15] + u[15:18]) / 2
    scene = {
        "shape": np.int64(shape),
        "colour_a": np.mod(middle + 0.25 + 0.5 * u[0:3], 1), "colour_b": np.mod(middle + 0.25 + 0.5 * u[3:6], 1),
        "texture": np.int64(min(int(u[6] * len(TEXTURES)), len(TEXTURES) - 1)),
        "texture_freq": 1.2 + 2.3 * u[7], "texture_dir": np.pi * u[8], "texture_phase": 2 * np.pi * u[9:11],
        "texture_strength": 0.4 + 0.6 * u[11],
        "texture_grid": rng.random((TEXTURE_GRID, TEXTURE_GRID)),
        "background_a": u[12:15], "background_b": u[15:18],
        "gradient": 1.5 * u[18], "gradient_dir": 2 * np.pi * u[19],
        "background_noise": 0.45 * u[20],
        "background_grid": rng.random((3, BACKGROUND_GRID, BACKGROUND_GRID)),
        "noise_std": noise * u[21],
        # clutter slot k is active when k < count; a stroke (segment) or a blob (ellipse); under or over the shape
        "clutter_active": np.arange(slots) < int(u[22] * (clutter + 1)),
        "clutter_stroke": c[:, 0] < 0.5,
        "clutter_above": c[:, 1] < occlusion,
        "clutter_colour": c[:, 2:5],
        # stroke: start (x, y), length, direction, half width; blob: centre (x, y), radii, rotation
        "clutter_xy": size * c[:, 5:7],
        "clutter_a": size * (0.15 + 0.35 * c[:, 7]),
        "clutter_b": size * (0.04 + 0.08 * c[:, 8]),
        "clutter_dir": 2 * np.pi * c[:, 9],
    }
    scene["clutter_active"] &= clutter > 0
    scene["pixel_noise"] = rng.standard_normal((frames, 3, size, size), dtype=np.float32)
    return scene


def stack(scenes: Sequence[Mapping[str, Array]]) -> dict[str, Array]:
    """One batch array per parameter, scenes along the first axis (floats as float32: frames are rendered in
    single precision)."""
    batch = {name: np.stack([np.asarray(scene[name]) for scene in scenes]) for name in scenes[0]}
    return {name: value.astype(np.float32) if value.dtype.kind == "f" else value for name, value in batch.items()}


# ----- rendering ---------------------------------------------------------------------------------------------


def _interpolation_matrix(samples: Array, points: int) -> Array:
    """``[len(samples), points]`` linear-interpolation weights of ``samples`` (in control-point units)."""
    samples = np.clip(samples, 0, points - 1)
    low = np.minimum(np.floor(samples).astype(np.int64), points - 2)
    frac = samples - low
    weights = np.zeros((len(samples), points), dtype=np.float32)
    weights[np.arange(len(samples)), low] = 1 - frac
    weights[np.arange(len(samples)), low + 1] = frac
    return weights


def _bilinear_gather(grid: Array, gx: Array, gy: Array) -> Array:
    """Per-scene bilinear lookup: ``grid`` ``[n, g, g]``, coordinates ``[n, ...]`` in control-point units."""
    g = grid.shape[-1]
    gx, gy = np.clip(gx, 0, g - 1), np.clip(gy, 0, g - 1)
    x0 = np.minimum(np.floor(gx).astype(np.int64), g - 2)
    y0 = np.minimum(np.floor(gy).astype(np.int64), g - 2)
    fx, fy = gx - x0, gy - y0
    item = np.arange(len(grid)).reshape((-1,) + (1,) * (gx.ndim - 1))
    top = grid[item, y0, x0] * (1 - fx) + grid[item, y0, x0 + 1] * fx
    bottom = grid[item, y0 + 1, x0] * (1 - fx) + grid[item, y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _texture(batch: Mapping[str, Array], u: Array, v: Array) -> Array:
    """Texture value in [0, 1] at local coordinates ``[n, T, S, S]`` (0 everywhere for solid fills)."""
    t = np.zeros_like(u)
    kind = batch["texture"]

    def pick(name: str, idx: Array) -> Array:
        return batch[name][idx].reshape((-1,) + (1,) * (u.ndim - 1) + batch[name].shape[1:])

    for code, name in enumerate(TEXTURES):
        idx = np.flatnonzero(kind == code)
        if name == "solid" or len(idx) == 0:
            continue
        uu, vv = u[idx], v[idx]
        freq, direction = pick("texture_freq", idx), pick("texture_dir", idx)
        along = uu * np.cos(direction) + vv * np.sin(direction)
        if name == "stripes":
            phase = batch["texture_phase"][idx, 0].reshape((-1,) + (1,) * (u.ndim - 1))
            t[idx] = 0.5 + 0.5 * np.tanh(4 * np.sin(2 * np.pi * freq * along + phase))
        elif name == "checks":
            across = -uu * np.sin(direction) + vv * np.cos(direction)
            phases = batch["texture_phase"][idx] / (2 * np.pi)
            a = np.floor(freq * along + phases[:, 0].reshape((-1,) + (1,) * (u.ndim - 1)))
            b = np.floor(freq * across + phases[:, 1].reshape((-1,) + (1,) * (u.ndim - 1)))
            t[idx] = np.mod(a + b, 2)
        else:  # smooth noise over the shape's unit disc
            scale = (TEXTURE_GRID - 1) / 2
            t[idx] = _bilinear_gather(batch["texture_grid"][idx], (uu + 1) * scale, (vv + 1) * scale)
    return t


def _background(batch: Mapping[str, Array], xs: Array, size: int) -> Array:
    """``[n, 3, S, S]``: a two-colour linear gradient plus smooth colour noise."""
    a, b = batch["background_a"][:, :, None, None], batch["background_b"][:, :, None, None]
    direction = batch["gradient_dir"][:, None, None]
    centred = xs - size / 2
    ramp = (np.cos(direction) * centred[None, None, :] + np.sin(direction) * centred[None, :, None]) / size
    ramp = np.clip(0.5 + batch["gradient"][:, None, None] * ramp, 0, 1)[:, None]
    image = a + (b - a) * ramp
    weights = _interpolation_matrix(xs / size * (BACKGROUND_GRID - 1), BACKGROUND_GRID)
    smooth = weights @ (batch["background_grid"] @ weights.T)  # [S, g] @ [n, 3, g, g] @ [g, S]
    return image + batch["background_noise"][:, None, None, None] * (smooth - 0.5)


def _clutter_masks(batch: Mapping[str, Array], xs: Array) -> Array:
    """``[n, K, S, S]`` coverage of every clutter slot (False for inactive slots); only active slots are drawn."""
    active = batch["clutter_active"]
    masks = np.zeros(active.shape + (len(xs), len(xs)), dtype=bool)
    px, py = xs[None, None, :], xs[None, :, None]
    for stroke in (True, False):
        item, slot = np.nonzero(active & (batch["clutter_stroke"] == stroke))
        if len(item) == 0:
            continue
        x0, y0 = batch["clutter_xy"][item, slot, 0, None, None], batch["clutter_xy"][item, slot, 1, None, None]
        a, b = batch["clutter_a"][item, slot, None, None], batch["clutter_b"][item, slot, None, None]
        direction = batch["clutter_dir"][item, slot, None, None]
        cos, sin = np.cos(direction), np.sin(direction)
        rx, ry = px - x0, py - y0
        if stroke:  # the segment from (x0, y0) of length a along direction, half width b / 4 + 0.5 px
            along = np.clip(rx * cos + ry * sin, 0, a)
            masks[item, slot] = (rx - along * cos) ** 2 + (ry - along * sin) ** 2 <= (b / 4 + 0.5) ** 2
        else:  # an ellipse centred on (x0, y0) with radii b and b / 2
            u = (rx * cos + ry * sin) / b
            v = (ry * cos - rx * sin) / (b / 2)
            masks[item, slot] = u * u + v * v <= 1
    return masks


def _composite_clutter(image: Array, batch: Mapping[str, Array], masks: Array, above: bool) -> Array:
    """``image`` ``[n, ..., 3, S, S]`` with the clutter slots under (or over) the shape painted on, in slot order."""
    extra = (1,) * (image.ndim - 4)
    for k in range(masks.shape[1]):
        layer = masks[:, k] & (batch["clutter_above"][:, k] == above)[:, None, None]
        if not layer.any():
            continue
        colour = batch["clutter_colour"][:, k].reshape((len(image),) + extra + (3, 1, 1))
        image = np.where(layer.reshape((len(image),) + extra + (1,) + layer.shape[1:]), colour, image)
    return image


def render(batch: Mapping[str, Array], size: int, supersample: int, wrap: bool) -> Array:
    """``uint8 [n, T, 3, size, size]`` frames of a batch of scenes (see :func:`stack`).

    Pose arrays ``cx``, ``cy``, ``angle``, ``radius`` are ``[n, T]``; ``wrap`` puts the shape on a torus (it
    leaves one edge and enters at the opposite one), so that where it is says nothing about how it moves."""
    ss = supersample
    xs = ((np.arange(size * ss) + 0.5) / ss).astype(np.float32)
    n = len(batch["shape"])
    # the static layers: background, with the clutter under the shape
    masks = _clutter_masks(batch, xs)
    under = _composite_clutter(_background(batch, xs, size), batch, masks, above=False)  # [n, 3, S, S]
    # the shape in every frame, in its local coordinates
    pose = {name: batch[name][:, :, None, None] for name in ("cx", "cy", "angle", "radius")}
    dx = xs[None, None, None, :] - pose["cx"]
    dy = xs[None, None, :, None] - pose["cy"]
    if wrap:
        dx = np.mod(dx + size / 2, size) - size / 2
        dy = np.mod(dy + size / 2, size) - size / 2
    cos, sin = np.cos(pose["angle"]), np.sin(pose["angle"])
    u = (cos * dx + sin * dy) / pose["radius"]
    v = (-sin * dx + cos * dy) / pose["radius"]
    inside = np.zeros(u.shape, dtype=bool)
    for code, name in enumerate(SHAPES):
        idx = np.flatnonzero(batch["shape"] == code)
        if len(idx):
            inside[idx] = INSIDE[name](u[idx], v[idx])
    t = (_texture(batch, u, v) * batch["texture_strength"][:, None, None, None])[:, :, None]  # [n, T, 1, S, S]
    ca, cb = (batch[name][:, None, :, None, None] for name in ("colour_a", "colour_b"))
    fill = ca + (cb - ca) * t  # [n, T, 3, S, S]
    alpha = inside[:, :, None].astype(np.float32)
    frames = under[:, None] + (fill - under[:, None]) * alpha
    frames = _composite_clutter(frames, batch, masks, above=True)
    # average the samples of each pixel, add pixel noise, quantise
    frames = frames.reshape(n, frames.shape[1], 3, size, ss, size, ss).mean(axis=(4, 6))
    frames = frames + batch["noise_std"][:, None, None, None, None] * batch["pixel_noise"]
    return np.clip(np.rint(frames * 255), 0, 255).astype(np.uint8)
