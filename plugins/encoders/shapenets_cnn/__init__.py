"""The convolutional network of 3D ShapeNets (Wu et al.) trained as a plain discriminative classifier, as a voxel
encoder: an occupancy grid [B, 1, 32, 32, 32] to the output of its fully connected layers (4000-d as the thesis
describes it; 1200-d with ``hidden2=0``); the final linear layer is the ``classifier`` decoder (``hidden=0``).

Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.config_checks import require_non_negative, require_positive
from harness.specs import ComponentSpec, EncoderCaps, Kind


@dataclass
class ShapeNetsCNNConfig:
    """Defaults are the paper's sizes (3D ShapeNets, Section 3; the thesis's Table 3.3 network)."""

    filters1: int = 48  # 6^3 filters, stride 2
    filters2: int = 160  # 5^3 filters, stride 2
    filters3: int = 512  # 4^3 filters, stride 1
    hidden1: int = 1200  # units of the first fully connected layer
    hidden2: int = 4000  # units of the second one (the feature size); 0: no second layer, the feature is hidden1

    def __post_init__(self) -> None:
        require_positive(self, "filters1", "filters2", "filters3", "hidden1")
        require_non_negative(self, "hidden2")


SPEC = ComponentSpec(
    kind=Kind.ENCODER,
    name="shapenets_cnn",
    factory="harness_plugins.encoders.shapenets_cnn.model:build",
    config=ShapeNetsCNNConfig,
    capabilities=EncoderCaps(consumes="voxels", produces="global",
                             # benched on the synthetic stand-in for its paper's data, with the paper's
                             # single linear head
                             bench_datasets=("synthetic_voxels",), bench_heads={"classifier": ("decoder.hidden=0",)}),
    version="1",
    citation='Wu et al., "3D ShapeNets: A Deep Representation for Volumetric Shapes", CVPR 2015; Costain, '
             '"Efficient Processing and Representations for 3D Tasks", DPhil thesis, Oxford 2023 (Table 3.3)',
    description="3D ShapeNets' convolutional network (48 6^3/2, 160 5^3/2 and 512 4^3 filters, 32^3 -> 2^3) with "
                "fully connected layers of 1200 and 4000 units and ReLUs, trained discriminatively, no CDBN "
                "pre-training.",
    profiles={
        "smoke": {"filters1": 4, "filters2": 8, "filters3": 16, "hidden1": 32, "hidden2": 32},
        "quick": {"filters1": 16, "filters2": 32, "filters3": 64, "hidden1": 128, "hidden2": 128},
    },
)
