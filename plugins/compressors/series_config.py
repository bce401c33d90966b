"""The configuration CosConv and ChebConv share (torch-free; the layers live in ``series.py``)."""
from __future__ import annotations

from dataclasses import dataclass

from harness.config_checks import FieldError, require_choice, require_positive

FITS = ("gd", "lstsq")


@dataclass
class SeriesConfig:
    """Harmonics per layer or per block; the fit of the coefficients to the trained kernels; optional BFP."""

    harmonics: str = "3"  # N per spatial axis (N <= kernel size): "3", "6 555 44" per layer, "3,3,3,2" per block
    fit: str = "gd"  # "gd": Adam on the mean squared error (the paper's choice); "lstsq": the closed form
    fit_steps: int = 500  # Adam steps of the "gd" fit (one fit per layer, all kernels at once)
    fit_lr: float = 0.01  # Adam's initial learning rate (decayed to zero over the steps, cosine)
    coefficient_bits: int = 0  # > 0: the coefficients are BFP at block size 1 with these bits (STE when training)
    exponent_bits: int = 7  # the exponent of each quantised coefficient (and activation)
    activations: bool = True  # with coefficient_bits > 0, also the layer inputs at the same bits (paper, App. C)

    def __post_init__(self) -> None:
        require_choice(self, "fit", FITS)
        require_positive(self, "fit_steps", "fit_lr", "exponent_bits")
        if self.coefficient_bits == 1 or self.coefficient_bits < 0:
            raise FieldError("coefficient_bits", self.coefficient_bits, "0 (float) or at least 2 (BFP)")

    def describe(self) -> str:
        parts = [f"harmonics {self.harmonics}"]
        if self.fit != "gd":
            parts.append(f"fit {self.fit}")
        if self.coefficient_bits:
            what = "coefficients+activations" if self.activations else "coefficients"
            parts.append(f"{what} {self.coefficient_bits}-bit")
        return ", ".join(parts)
