"""The per-sample input shape an encoder sizes its stem from (``DatasetInfo.input_shapes``), with a default for
datasets that do not declare one. Torch-free."""
from __future__ import annotations

from harness.data import DatasetInfo


def input_shape(info: DatasetInfo | None, modality: str, default: tuple[int, ...], encoder: str) -> tuple[int, ...]:
    """``info.input_shapes[modality]`` when the dataset declares it, else ``default``; an error naming the
    encoder when the declared shape has the wrong number of axes (e.g. an image without its channel axis)."""
    shapes = getattr(info, "input_shapes", None) or {}
    shape = tuple(int(size) for size in shapes.get(modality, default))
    if len(shape) != len(default) or min(shape) < 1:
        name = getattr(info, "name", "?")
        raise ValueError(f"encoder {encoder!r}: dataset {name!r} declares {modality} samples of shape {shape}; "
                         f"expected {len(default)} positive sizes like {default}")
    return shape
