"""What every compressor shares: which layers of a built model it may replace, how per-layer and per-block
settings are written, and what a model costs to store before and after.

Layers are found in module registration order (the order of ``named_modules``), which for the harness's
models is their forward order. A model groups its layers into *blocks* by declaring, on any module, a
class attribute ``compression_blocks`` naming child modules in order (ResNet-20: the stem conv and its
three stages); every eligible layer outside a declared block is a block of its own.

Settings (bits, harmonics) are written compactly, as in the papers' tables:

- ``"4"``: the same value for every layer;
- ``"6 555 44 333 22 11"``: one digit per layer, spaces only group them for the eye; ``"6×3 5×5"`` (or
  ``6x3``) repeats a value;
- ``"3,3,3,2"``: comma-separated values, one per block (values may have several digits).

Storage is counted from the parameters only (buffers such as batch-norm statistics are not weights): a
plain parameter costs 32 bits; a compressed layer says what it stores (``stored_parameters`` and
``stored_bits``). Megabytes are 2^20 bytes, as the quantisation papers' figures are.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence, runtime_checkable

from torch import nn

FLOAT_BITS = 32
MEGABYTE = 2 ** 20
LAYER_TYPES: dict[str, type[nn.Module]] = {"Conv1d": nn.Conv1d, "Conv2d": nn.Conv2d, "Conv3d": nn.Conv3d,
                                           "Linear": nn.Linear}
_RUN = re.compile(r"^(\d+)[x×](\d+)$")


@runtime_checkable
class CompressedLayer(Protocol):
    """A layer a compressor put in place of an original one; it reports what it stores."""

    def stored_parameters(self) -> int: ...

    def stored_bits(self) -> int: ...


@dataclass(frozen=True)
class Layer:
    name: str  # dotted module path within the model
    module: nn.Module
    block: int  # index of its block, for per-block settings


@dataclass(frozen=True)
class Settings:
    """Parsed setting text: ``per`` is "all" (one value), "layer" or "block"."""

    values: tuple[int, ...]
    per: str
    text: str

    def assign(self, layers: Sequence[Layer], what: str) -> dict[str, int]:
        """Layer name -> value; a clear error when the count does not fit the model."""
        if self.per == "all":
            return {layer.name: self.values[0] for layer in layers}
        if self.per == "layer":
            if len(self.values) != len(layers):
                raise ValueError(f"{what}={self.text!r} gives {len(self.values)} per-layer values but the model has "
                                 f"{len(layers)} layers to compress: {', '.join(layer.name for layer in layers)}")
            return {layer.name: value for layer, value in zip(layers, self.values)}
        blocks = sorted({layer.block for layer in layers})
        if len(self.values) != len(blocks):
            raise ValueError(f"{what}={self.text!r} gives {len(self.values)} per-block values but the layers to "
                             f"compress fall into {len(blocks)} blocks: {describe_blocks(layers)}")
        by_block = dict(zip(blocks, self.values))
        return {layer.name: by_block[layer.block] for layer in layers}


def parse_settings(text: str | int, what: str) -> Settings:
    """Read ``"4"``, ``"6 555 44"``, ``"6×3 5×5"`` or ``"3,3,3,2"`` (see the module docstring)."""
    raw = str(text).strip()
    try:
        if "," in raw:
            values = tuple(int(part) for part in raw.split(","))
            per = "block"
        elif (raw.isdigit() and len(raw) > 1) or " " in raw or _RUN.match(raw):
            values = tuple(_layer_digits(raw))
            per = "layer"
        else:
            values, per = (int(raw),), "all"
    except ValueError:
        raise ValueError(f"{what}={raw!r}: expected one value ('4'), a digit per layer ('6 555 44', runs as "
                         "'6×3'), or comma-separated values per block ('3,3,3,2')") from None
    if not values or min(values) < 1:
        raise ValueError(f"{what}={raw!r}: values must be positive integers")
    return Settings(values, per, raw)


def _layer_digits(text: str) -> Iterable[int]:
    tokens = re.sub(r"\s*[x×]\s*", "×", text).split()
    for token in tokens:
        run = _RUN.match(token)
        if run:
            yield from [int(run.group(1))] * int(run.group(2))
        elif token.isdigit():
            yield from (int(digit) for digit in token)
        else:
            raise ValueError(token)


def eligible_layers(model: nn.Module, layer_types: Sequence[str],
                    accept: Callable[[nn.Module], bool] = lambda module: True) -> list[Layer]:
    """The layers of ``model`` of the given type names (see LAYER_TYPES) that ``accept`` keeps, in order,
    with their block indices; layers already compressed are skipped."""
    unknown = [name for name in layer_types if name not in LAYER_TYPES]
    if unknown:
        raise ValueError(f"layer types {unknown} unknown; expected some of {list(LAYER_TYPES)}")
    types = tuple(LAYER_TYPES[name] for name in layer_types)
    block_of = _block_prefixes(model)
    layers, blocks = [], {}
    for name, module in _plain_modules(model):
        if isinstance(module, types) and accept(module):
            prefix = next((p for p in block_of if name == p or name.startswith(p + ".")), name)
            blocks.setdefault(prefix, len(blocks))
            layers.append(Layer(name, module, blocks[prefix]))
    return layers


def _plain_modules(model: nn.Module, prefix: str = "") -> Iterable[tuple[str, nn.Module]]:
    """``named_modules`` without descending into compressed layers (their inner originals are not layers)."""
    for name, child in model.named_children():
        path = f"{prefix}.{name}" if prefix else name
        yield path, child
        if not isinstance(child, CompressedLayer):
            yield from _plain_modules(child, path)


def _block_prefixes(model: nn.Module) -> list[str]:
    """Dotted paths of the declared blocks, innermost declarations first so they win."""
    prefixes = []
    for name, module in model.named_modules():
        for child in getattr(type(module), "compression_blocks", ()):
            prefixes.append(f"{name}.{child}" if name else child)
    return sorted(prefixes, key=lambda p: -p.count("."))


def describe_blocks(layers: Sequence[Layer]) -> str:
    groups: dict[int, list[str]] = {}
    for layer in layers:
        groups.setdefault(layer.block, []).append(layer.name)
    return "; ".join(f"block {i + 1}: {', '.join(names)}" for i, (_, names) in enumerate(sorted(groups.items())))


def exempt(layers: Sequence[Layer], first: bool, last: bool) -> list[Layer]:
    """Drop the model's first and/or last eligible layer (kept in floating point, as the papers do)."""
    kept = list(layers)
    if first and kept:
        kept = kept[1:]
    if last and kept:
        kept = kept[:-1]
    return kept


def replace_layer(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the module at dotted path ``name`` was."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


@dataclass(frozen=True)
class Size:
    """What a model stores: its parameter count and bits."""

    parameters: int
    bits: int

    @property
    def megabytes(self) -> float:
        return self.bits / 8 / MEGABYTE


def model_size(model: nn.Module) -> Size:
    """Parameters and bits of ``model``: 32 bits per plain parameter, a compressed layer's own figures."""
    parameters = bits = 0
    for module in _modules_to_count(model):
        if isinstance(module, CompressedLayer):
            parameters += module.stored_parameters()
            bits += module.stored_bits()
        else:
            own = sum(p.numel() for p in module.parameters(recurse=False))
            parameters += own
            bits += own * FLOAT_BITS
    return Size(parameters, bits)


def _modules_to_count(model: nn.Module) -> Iterable[nn.Module]:
    yield model
    if not isinstance(model, CompressedLayer):
        for _, module in _plain_modules(model):
            yield module


@dataclass(frozen=True)
class LayerChange:
    name: str
    kind: str  # the original layer type, e.g. Conv2d
    setting: int  # the bits or harmonics it got
    before: Size
    after: Size


@dataclass(frozen=True)
class CompressionReport:
    """Exact accounting of one compression: the whole model before and after, and every replaced layer."""

    before: Size
    after: Size
    layers: tuple[LayerChange, ...]

    @property
    def parameter_change_pct(self) -> float:
        return 100.0 * (self.after.parameters - self.before.parameters) / self.before.parameters


def compress_layers(model: nn.Module, layers: Sequence[Layer], settings: dict[str, int],
                    make: Callable[[nn.Module, int], nn.Module]) -> CompressionReport:
    """Replace each layer by ``make(layer, setting)`` and account for it; the compressors' common loop."""
    before = model_size(model)
    changes = []
    for layer in layers:
        new = make(layer.module, settings[layer.name])
        if not isinstance(new, CompressedLayer):
            raise TypeError(f"{type(new).__name__} must report stored_parameters() and stored_bits()")
        replace_layer(model, layer.name, new)
        changes.append(LayerChange(layer.name, type(layer.module).__name__, settings[layer.name],
                                   model_size(layer.module), model_size(new)))
    return CompressionReport(before, model_size(model), tuple(changes))
