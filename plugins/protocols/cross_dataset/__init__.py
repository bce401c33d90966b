"""Cross-dataset contextualising (Table 2 of Costain, Li and Prisacariu, "Contextualising Implicit
Representations for Semantic Tasks"): geometric-only encodings trained on dataset(s) A (``protocol.source``),
then the contextualising module + semantic decoder trained on dataset B, the run's dataset, and everything
evaluated on B's test split (reconstruction with A's encoder and UDF decoder, semantics through the module).

Several sources train stage 1 on their union ("Triad": the train splits summed, likewise the validation
splits). Each source is built with this run's profile and then ``protocol.source_config[<name>]`` (e.g. its
``root``); a source named like the run's dataset without overrides is the run's dataset itself (the diagonal of
Table 2, the same stage 1 as the ``contextualise`` protocol's, trained once for both). Stage 1 is trained once
per recipe (the source data are part of it) and shared with every run that needs it.

``harness bench`` runs no variant of it: the embedded synthetic data has one scene dataset, and the same rooms
under another seed would not be a cross-dataset experiment. Run it on real data, e.g.
``protocol=cross_dataset dataset=s3dis dataset.root=... 'protocol.source=[scannet]'
'+protocol.source_config={scannet: {root: /data/scannet}}'``.

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.specs import ComponentSpec, Kind, ProtocolCaps

from ..contextualise import QUICK, SMOKE, SceneStagesConfig


@dataclass
class CrossDatasetConfig(SceneStagesConfig):
    source: list[str] = field(default_factory=lambda: ["scannet"])  # stage 1's datasets (several: their union)
    # per source dataset: overrides of its config after this run's profile (e.g. {scannet: {root: /data/scannet}})
    source_config: dict[str, dict[str, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        return f"geometric on {' + '.join(self.source)}, context on the target"


SPEC = ComponentSpec(
    kind=Kind.PROTOCOL,
    name="cross_dataset",
    factory="harness_plugins.protocols.cross_dataset.protocol:CrossDatasetProtocol",
    config=CrossDatasetConfig,
    capabilities=ProtocolCaps(
        roles=("dataset", "encoder"),
        encodings=("points",),
        reference_tables=("contextualising_t2a", "contextualising_t2b", "contextualising_t2c", "contextualising_t2d",
                          "thesis_ch6_t2a", "thesis_ch6_t2b", "thesis_ch6_t2c", "thesis_ch6_t2d"),
        reference_metrics={"CD-L1": "cd_l1", "CD-L2": "cd_l2", "F1-delta": "f1_delta", "F1-2delta": "f1_2delta",
                           "mF1-delta": "mf1_delta", "mF1-2delta": "mf1_2delta", "mIoU": "miou"},
        primary_metric="miou",
        bench=(),  # see the module docstring
    ),
    version="1",
    citation='Costain, Li and Prisacariu, "Contextualising Implicit Representations for Semantic Tasks", 2023 '
             '(Table 2)',
    description="Geometric-only encoder + UDF trained on protocol.source (their union when several), then the "
                "contextualiser + semantic decoder on the run's dataset; its test metrics.",
    profiles={"smoke": dict(SMOKE), "quick": dict(QUICK)},
)
