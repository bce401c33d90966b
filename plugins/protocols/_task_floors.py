"""Shared by the protocols that record the single-task protocols' metrics (multi-task, hold-out, compression,
quantisation): how their leaderboards name the trivial floors, which are those tasks' own (torch-free, for the
specs)."""
from __future__ import annotations

from .classification import SPEC as CLASSIFICATION
from .reconstruction import SPEC as RECONSTRUCTION
from .segmentation import SPEC as SEGMENTATION

TASK_FLOOR_LABEL = "each task's: " + "; ".join(spec.capabilities.floor_label
                                               for spec in (CLASSIFICATION, RECONSTRUCTION, SEGMENTATION))
