"""Generation of the synthetic videos: a textured shape (any of the image shapes, see
:mod:`..synthetic_images.render`) moving over a static cluttered background; the class is the motion.

Everything a single frame shows has the same distribution in every class, so the class can only be read
from how frames change: the shape kind, fill, colours, background and clutter are drawn independently of
the class; the scene wraps around (a torus) and the position at the first frame is uniform, so the position
in any frame is uniform; the rotation at the first frame is uniform; and every clip's radius carries the
factor ``1 + 0.25 sin(phase)`` with a uniform phase, which ``pulse`` advances over the clip (one period) while
the other motions keep it fixed, so the radius in any frame has one distribution. Motions:

============  =====================================================================================
left/right    constant velocity along x, 30-55% of the frame width over the clip
up/down       the same along y
rotate_cw     turning at a constant rate, 90-180 degrees over the clip (clockwise on screen)
rotate_ccw    the same, anticlockwise
orbit_cw      circling a point at radius 10-18% of the width, one revolution per clip, clockwise
orbit_ccw     the same, anticlockwise
pulse         the radius oscillates by +-25%, one period per clip
shake         back and forth along x, amplitude 8-15% of the width, 1.5 periods per clip
============  =====================================================================================

Each clip is drawn from a generator seeded by ``(seed, split, index)`` alone.
"""
from __future__ import annotations

import numpy as np

from ..synthetic_images.generate import scene_rng
from ..synthetic_images.render import SHAPES, draw_scene, render, stack
from .config import SyntheticVideosConfig

PULSE = 0.25  # relative radius change of the pulse (and the static radius factor of the other motions)
SAMPLES_PER_BATCH = 2_000_000  # supersampled frame pixels rendered at once (bounds memory)


def motion(name: str, rng: np.random.Generator, size: int, frames: int) -> dict[str, np.ndarray]:
    """The pose of every frame (``cx``, ``cy``, ``angle``, ``radius``: ``[frames]``) of one clip."""
    u = rng.random(8)
    t = np.arange(frames, dtype=np.float64)
    cx, cy = np.full(frames, size * u[0]), np.full(frames, size * u[1])
    angle = np.full(frames, 2 * np.pi * u[2])
    phase = 2 * np.pi * u[3] + (2 * np.pi * t / frames if name == "pulse" else np.zeros(frames))
    radius = size * (0.16 + 0.12 * u[4]) * (1 + PULSE * np.sin(phase))
    step = size * (0.30 + 0.25 * u[5]) / (frames - 1)  # translation per frame
    turn = np.pi * (0.5 + 0.5 * u[5]) / (frames - 1)  # rotation per frame
    orbit = size * (0.10 + 0.08 * u[6])
    sign = -1.0 if name in ("left", "up", "rotate_ccw", "orbit_ccw") else 1.0
    if name in ("left", "right"):
        cx = cx + sign * step * t
    elif name in ("up", "down"):
        cy = cy + sign * step * t
    elif name.startswith("rotate"):
        angle = angle + sign * turn * t
    elif name.startswith("orbit"):
        around = 2 * np.pi * u[7] + sign * 2 * np.pi * t / frames
        cx, cy = cx + orbit * np.cos(around), cy + orbit * np.sin(around)
    elif name == "shake":
        cx = cx + size * (0.08 + 0.07 * u[6]) * np.sin(2 * np.pi * u[7] + 3 * np.pi * t / frames)
    elif name != "pulse":
        raise ValueError(f"synthetic_videos: unknown motion {name!r}")
    return {"cx": cx, "cy": cy, "angle": angle, "radius": radius}


def clip_scene(config: SyntheticVideosConfig, split: str, index: int) -> dict[str, np.ndarray]:
    rng = scene_rng(config.seed, split, index)
    size, frames = config.frame_size, config.clip_length
    shape = int(rng.integers(len(SHAPES)))
    scene = draw_scene(rng, shape, size, frames, config.clutter, config.occlusion, config.noise)
    if scene["texture"] == 0:  # a solid fill would hide the rotation of round shapes: always textured
        scene["texture"] = np.int64(1 + rng.integers(3))
    scene.update(motion(config.classes[index % len(config.classes)], rng, size, frames))
    return scene


def generate_clips(config: SyntheticVideosConfig, split: str, indices: range | list[int]) -> np.ndarray:
    """``uint8 [len(indices), 3, T, H, W]``: the clips of ``indices`` of ``split``."""
    indices = list(indices)
    size, frames = config.frame_size, config.clip_length
    out = np.empty((len(indices), 3, frames, size, size), dtype=np.uint8)
    batch = max(1, SAMPLES_PER_BATCH // (frames * (size * config.supersample) ** 2))
    for start in range(0, len(indices), batch):
        part = indices[start:start + batch]
        scenes = stack([clip_scene(config, split, index) for index in part])
        out[start:start + len(part)] = render(scenes, size, config.supersample, wrap=True).transpose(0, 2, 1, 3, 4)
    return out
