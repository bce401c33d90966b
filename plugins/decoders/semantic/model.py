"""The semantic decoder: (query [B, M, 3], (xyz [B, N, 3], features [B, N, D])) -> logits [B, M, C], the
attentive interpolation shared with ``udf`` (:class:`~harness_plugins.decoders.attentive.PointQueryHead`) with C
outputs, C = ``len(info.semantic_classes)``."""
from __future__ import annotations

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo, check_encoding

from ..attentive import PointQueryHead
from . import SPEC, SemanticConfig


def build(config: SemanticConfig, encoding: EncodingInfo, info: DatasetInfo) -> PointQueryHead:
    check_encoding(encoding, SPEC.name, SPEC.capabilities.consumes)
    classes = len(info.semantic_classes) if info is not None else 0
    if classes < 2:
        raise ValueError(f"decoder 'semantic' needs a semantic vocabulary; dataset "
                         f"{getattr(info, 'name', None)!r} declares {classes} semantic class(es)")
    return PointQueryHead(encoding.dim, classes, list(config.hidden), config.neighbours, config.position_channels,
                          config.attention_hidden, config.knn_chunk, config.relative_scale)
