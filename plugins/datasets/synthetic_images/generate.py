"""Generation of the synthetic images: one scene per image (see :mod:`.render`), drawn from a generator seeded by
``(seed, split, index)`` alone, so an image does not depend on which other images are generated with it.

Image ``i`` of a split shows shape ``classes[i mod C]`` at a random position (centre within the middle half
of the image, so parts may be cut off), rotation and size (radius 20-40% of the image width), with a random
fill texture and colours, a random background and up to ``clutter`` distractors (a fraction ``occlusion`` of
them over the shape), plus pixel noise.
"""
from __future__ import annotations

import zlib

import numpy as np

from .config import SyntheticImagesConfig
from .render import SHAPES, draw_scene, render, stack

BATCH = 256  # scenes rendered at once (bounds the memory of the supersampled arrays)


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of item ``index`` of ``split``: independent of every other item's."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(split.encode()), index)))


def image_scene(config: SyntheticImagesConfig, split: str, index: int) -> dict[str, np.ndarray]:
    rng = scene_rng(config.seed, split, index)
    shape = SHAPES.index(config.classes[index % len(config.classes)])
    size = config.image_size
    scene = draw_scene(rng, shape, size, 1, config.clutter, config.occlusion, config.noise)
    pose = rng.random(4)
    scene.update(cx=size * (0.25 + 0.5 * pose[:1]), cy=size * (0.25 + 0.5 * pose[1:2]),
                 angle=2 * np.pi * pose[2:3], radius=size * (0.2 + 0.2 * pose[3:4]))
    return scene


def generate_images(config: SyntheticImagesConfig, split: str, indices: range | list[int]) -> np.ndarray:
    """``uint8 [len(indices), 3, H, W]``: the images of ``indices`` of ``split``."""
    indices = list(indices)
    out = np.empty((len(indices), 3, config.image_size, config.image_size), dtype=np.uint8)
    for start in range(0, len(indices), BATCH):
        part = indices[start:start + BATCH]
        batch = stack([image_scene(config, split, index) for index in part])
        out[start:start + len(part)] = render(batch, config.image_size, config.supersample, wrap=False)[:, 0]
    return out
