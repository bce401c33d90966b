"""Classifier head of "Towards Generalising Neural Implicit Representations": a two-layer MLP on a global code.

Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.config_checks import require_non_negative
from harness.specs import ComponentSpec, DecoderCaps, Kind


@dataclass
class ClassifierConfig:
    # width of the single hidden layer (the paper says only "a simple 2 layer MLP"); 0: one linear layer, the
    # usual head of an image or video classifier (ResNet, R3D)
    hidden: int = 256

    def __post_init__(self) -> None:
        require_non_negative(self, "hidden")


SPEC = ComponentSpec(
    kind=Kind.DECODER,
    name="classifier",
    factory="harness_plugins.decoders.classifier.model:build",
    config=ClassifierConfig,
    capabilities=DecoderCaps(consumes=("global",), task="classification"),
    version="1",
    citation='Hughes et al., "Towards Generalising Neural Implicit Representations", ECCV Workshops 2022',
    description="Two-layer MLP (or, with hidden=0, one linear layer) from a global code to class logits.",
    profiles={"smoke": {"hidden": 16}, "quick": {"hidden": 128}},
)
