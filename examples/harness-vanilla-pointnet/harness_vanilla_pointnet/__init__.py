"""Registration of the `vanilla_pointnet` encoder; torch is imported only when it is built."""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.hooks import Register, hookimpl
from harness.specs import ComponentSpec, EncoderCaps, Kind


@dataclass
class VanillaPointNetConfig:
    widths: list[int] = field(default_factory=lambda: [64, 64, 64, 128, 1024])  # shared MLP, as in the paper
    code_size: int = 512


SPEC = ComponentSpec(
    kind=Kind.ENCODER,
    name="vanilla_pointnet",
    factory="harness_vanilla_pointnet.model:build",
    config=VanillaPointNetConfig,
    capabilities=EncoderCaps(consumes="points", produces="global"),
    version="0.1.0",
    citation='Qi et al., "PointNet: Deep Learning on Point Sets for 3D Classification and Segmentation", CVPR 2017',
    description="Shared per-point MLP and max-pool to a global code (no input transform).",
    profiles={"smoke": {"widths": [16, 32], "code_size": 16}, "quick": {"widths": [64, 128, 256], "code_size": 128}},
)


@hookimpl
def register_encoders(register: Register) -> None:
    register(SPEC)
