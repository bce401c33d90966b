"""What each kind of component is, as typed protocols: what its spec's factory is called with and what it returns.

A spec's ``factory`` (``"module:function"``, imported only when the component is built) is one of the ``*Factory``
protocols below, and returns the matching component. The harness never checks a class hierarchy: any object with
these attributes fits (``Encoder``, ``Dataset``, ``RunProtocol`` and ``Compressor`` can be checked with
``isinstance``). :mod:`harness.testing` checks a plugin's components against them.

Kept free of torch at import time: spec modules (read by ``harness list``) may import it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness.compression import CompressionReport
    from harness.data import DatasetInfo
    from harness.encoding import EncodingInfo
    from harness.runner import RunContext
    from harness.store import Metric

# What an encoder returns for a batch, by its ``encoding.kind`` (see harness.encoding): ``global`` a tensor [B, D];
# ``points`` (xyz [B, N, 3], features [B, N, D]); ``grid`` a list of feature volumes [B, D_i, R_i, R_i, R_i].
Encoding = Union["torch.Tensor", "tuple[torch.Tensor, torch.Tensor]", "list[torch.Tensor]"]


@runtime_checkable
class Encoder(Protocol):
    """A module from one input modality (``batch[consumes]``, batched) to an encoding it declares before any data."""

    encoding: EncodingInfo

    def __call__(self, inputs: torch.Tensor) -> Encoding: ...


class EncoderFactory(Protocol):
    def __call__(self, config: Any, info: DatasetInfo | None) -> Encoder: ...


class DecoderFactory(Protocol):
    """A decoder (an ``nn.Module``) sized from the encoding it conditions on and the dataset's vocabularies; an
    encoding kind it does not consume is a ``ValueError`` naming the decoder (:func:`harness.encoding.check_encoding`).
    Its call depends on its task: implicit heads take (query [B, M, 3], encoding), a classifier the encoding alone."""

    def __call__(self, config: Any, encoding: EncodingInfo, info: DatasetInfo) -> nn.Module: ...


class SplitData(Protocol):
    """A map-style dataset of one split (a ``torch.utils.data.Dataset``): items are dicts keyed by
    :mod:`harness.data`'s sample keys."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict: ...


@runtime_checkable
class Dataset(Protocol):
    """What a dataset factory returns."""

    info: DatasetInfo

    def split(self, name: str) -> SplitData: ...

    def mesh_path(self, split: str, index: int) -> Path | None: ...


class DatasetFactory(Protocol):
    """Validates ``config``, generates or checks its files under ``cache_dir``, and opens them."""

    def __call__(self, config: Any, cache_dir: Path) -> Dataset: ...


@runtime_checkable
class RunProtocol(Protocol):
    """A protocol: trains and evaluates one run (``harness.task_protocol.TaskProtocol`` is the base of the training
    ones) and returns its metrics; the runner records them."""

    def run(self, ctx: RunContext) -> list[Metric]: ...


class ProtocolFactory(Protocol):
    def __call__(self, config: Any) -> RunProtocol: ...


@runtime_checkable
class Compressor(Protocol):
    """What a compressor plugin's factory returns: ``compress`` replaces layers of ``model`` in place."""

    def compress(self, model: nn.Module) -> CompressionReport: ...


class CompressorFactory(Protocol):
    def __call__(self, config: Any) -> Compressor: ...
