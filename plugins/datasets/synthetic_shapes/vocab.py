"""Category and part vocabulary of the synthetic shapes (no heavy imports, so configs and registrars can use it).

Like ShapeNetPart's 50 global part ids, every "category/part" pair of the configured categories gets one
global label; ``parts_per_class`` tells which of them a category may use.
"""
from __future__ import annotations

from collections.abc import Sequence

# category -> its part names, in the order their global ids are assigned
CATEGORY_PARTS: dict[str, tuple[str, ...]] = {
    "chair": ("seat", "back", "leg", "arm"),
    "table": ("top", "leg"),
    "lamp": ("base", "pole", "shade"),
    "airplane": ("body", "wing", "tail", "engine"),
    "mug": ("body", "handle"),
    "car": ("body", "cabin", "wheel"),
    "bench": ("seat", "leg", "back"),
    "bottle": ("body", "neck", "cap"),
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_PARTS)


def part_vocabulary(categories: Sequence[str]) -> tuple[tuple[str, ...], dict[str, tuple[int, ...]]]:
    """Global part names (``"category/part"``, index = part label) and class -> its global part ids."""
    parts: list[str] = []
    parts_per_class: dict[str, tuple[int, ...]] = {}
    for category in categories:
        names = CATEGORY_PARTS[category]
        parts_per_class[category] = tuple(range(len(parts), len(parts) + len(names)))
        parts.extend(f"{category}/{name}" for name in names)
    return tuple(parts), parts_per_class
