"""Cross-dataset contextualising (Table 2 of Costain, Li and Prisacariu, "Contextualising Implicit
Representations for Semantic Tasks"): geometric-only encodings trained on dataset(s) A (``protocol.source``),
then the contextualising module + semantic decoder trained on dataset B, the run's dataset, and everything
evaluated on B's test split (reconstruction with A's encoder and UDF decoder, semantics through the module).

Several sources train stage 1 on their union ("Triad": the train splits summed, likewise the validation
splits). Each source is built with this run's profile and then ``protocol.source_config[<name>]`` (e.g. its
``root``); a source named like the run's dataset without overrides is the run's dataset itself (the diagonal of
Table 2, the same stage 1 as the ``contextualise`` protocol's, trained once for both). Stage 1 is trained once
per recipe (the source data are part of it) and shared with every run that needs it. The sources' fingerprints
are part of the run's identity (``ProtocolCaps.data_fingerprints``): changed source data reruns it.

``harness bench`` runs it on the synthetic rooms with a domain shift between room types (different furniture
and class frequencies): the run's dataset is the work rooms (office, kitchen, bathroom), and stage 1 trains
either on homes (bedroom and living room, generated under another seed) or, the diagonal, on the work rooms
themselves; the leaderboard's two rows are cross-domain vs in-domain, as in Table 2. On real data, e.g.
``protocol=cross_dataset dataset=s3dis dataset.root=... 'protocol.source=[scannet]'
'+protocol.source_config={scannet: {root: /data/scannet}}'``.

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.claims import Claim, RowSelector
from harness.specs import BenchVariant, ComponentSpec, Kind, ProtocolCaps

from ..contextualise import QUICK, SMOKE, SPEC as CONTEXTUALISE, SceneStagesConfig, overrides_text


@dataclass
class CrossDatasetConfig(SceneStagesConfig):
    source: list[str] = field(default_factory=lambda: ["scannet"])  # stage 1's datasets (several: their union)
    # per source dataset: overrides of its config after this run's profile (e.g. {scannet: {root: /data/scannet}})
    source_config: dict[str, dict[str, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        """How its leaderboard rows read: each source with its overrides, which tell a source apart from the run's
        dataset of the same name (the diagonal has none)."""
        def source(name: str) -> str:
            overrides = self.source_config.get(name)
            return f"{name} ({overrides_text(overrides)})" if overrides else name

        return f"geometric on {' + '.join(source(name) for name in self.source)}, context on the run's dataset"


# The bench's Table 2 on the synthetic rooms: the run's dataset is the work rooms; stage 1 trains on homes (another
# seed) or on the work rooms themselves (the diagonal). The contextualise variants' sizes (2048 encoder input points
# and training queries per room) for the target and the source alike, so that only the data differs.
_SIZES = {"input_points": 2048, "query_points": 2048}
_WORK_ROOMS = ("dataset.room_types=[office,kitchen,bathroom]", *(f"dataset.{k}={v}" for k, v in _SIZES.items()),
               "protocol.source=[synthetic_rooms]")
_HOMES = ("+protocol.source_config={synthetic_rooms: {room_types: [bedroom, living_room], seed: 1, "
          + ", ".join(f"{k}: {v}" for k, v in _SIZES.items()) + "}}")

_SYNTHETIC_ROWS = {"encoder.name": "point_transformer", "dataset.room_types": ["office", "kitchen", "bathroom"],
                   "protocol.source": ["synthetic_rooms"]}
# Table 2: of the six pairs of stage-1 sources tested on one dataset, in-domain geometric features never do worse
# than cross-domain ones, and at most 0.044 mIoU better (ScanNet labels: 0.694 on ScanNet features, 0.65 on
# SceneNN's): cross training works, at the cost of a few points
CLAIMS = (
    Claim("in-domain-geometric-features-segment-at-least-as-well",
          "geometric features trained on the evaluated dataset give at least the mIoU of features trained on "
          "another, and at most 0.05 more", "contextualising2023 Tables 2a and 2b",
          RowSelector("cross_dataset", "miou", {**_SYNTHETIC_ROWS, "protocol.source_config": {}},
                      dataset="synthetic_rooms"),
          (0.0, 0.05),
          RowSelector("cross_dataset", "miou", {**_SYNTHETIC_ROWS, "protocol.source_config.synthetic_rooms.room_types":
                                                ["bedroom", "living_room"]}, dataset="synthetic_rooms"),
          published_a=0.694, published_b=0.65),
)


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
        floor_label=CONTEXTUALISE.capabilities.floor_label,  # the same floors, of the run's dataset
        reuses=("contextualise",),  # its stage 1 on the run's own rooms is contextualise's
        bench=tuple(BenchVariant(overrides, targets=("udf", "semantic"), datasets=("synthetic_rooms",),
                                 encoders=("point_transformer",))
                    for overrides in (_WORK_ROOMS + (_HOMES,), _WORK_ROOMS)),
        data_fingerprints="harness_plugins.protocols.cross_dataset.protocol:source_fingerprints",
        claims=CLAIMS,
    ),
    version="1",
    citation='Costain, Li and Prisacariu, "Contextualising Implicit Representations for Semantic Tasks", 2023 '
             '(Table 2)',
    description="Geometric-only encoder + UDF trained on protocol.source (their union when several), then the "
                "contextualiser + semantic decoder on the run's dataset; its test metrics.",
    profiles={"smoke": dict(SMOKE), "quick": dict(QUICK)},
)
