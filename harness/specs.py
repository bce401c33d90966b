"""Typed component specs: what a plugin registers, and what the registry can tell without building anything.

A spec is cheap: its factory is a ``"module:attr"`` string (or a callable) that is imported only when
the component is built, so ``harness list`` never imports torch.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from harness.claims import Claim


class Kind(str, Enum):
    """The component kinds; each has one registrar hook and one Hydra config group."""

    ENCODER = "encoder"
    DECODER = "decoder"
    COMPRESSOR = "compressor"
    DATASET = "dataset"
    PROTOCOL = "protocol"

    def __str__(self) -> str:
        return self.value


# Input modalities a dataset provides and an encoder consumes (sample keys, see harness.data).
MODALITIES = ("points", "image", "voxels", "video")
# Encoding kinds an encoder produces and a decoder consumes.
ENCODING_KINDS = ("global", "points", "grid")
# Decoder tasks, and the dataset target each one trains on.
TASK_TARGETS = {
    "occupancy": "occupancy",
    "udf": "udf",
    "segmentation": "part",
    "semantic": "semantic",
    "classification": "label",
    "joint": None,  # occupancy + part logits from one network (multi-task protocols check targets)
    "context": None,
}


@dataclass(frozen=True)
class EncoderCaps:
    consumes: str  # one of MODALITIES
    produces: str  # one of ENCODING_KINDS
    # the synthetic datasets ``harness bench`` pairs it with (the data its paper measured it on); empty: every
    # compatible one
    bench_datasets: tuple[str, ...] = ()
    # decoder name -> Hydra overrides ``harness bench`` applies when that decoder heads this encoder, e.g.
    # {"classifier": ("decoder.hidden=0",)}: the single linear head a ResNet is conventionally trained with
    bench_heads: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class DecoderCaps:
    consumes: tuple[str, ...]  # encoding kinds it accepts
    task: str  # one of TASK_TARGETS


@dataclass(frozen=True)
class DatasetCaps:
    modalities: tuple[str, ...]
    targets: tuple[str, ...]  # e.g. occupancy, udf, part, semantic, label
    synthetic: bool = False  # embedded procedural data, run by ``harness bench``
    # published datasets whose reference rows (../shared/reference, column ``dataset``) this one stands beside
    reference_datasets: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompressorCaps:
    layer_types: tuple[str, ...]  # e.g. Conv1d, Conv2d, Conv3d, Linear


@dataclass(frozen=True)
class BenchVariant:
    """One configuration ``harness bench`` runs a protocol in (a leaderboard row per variant)."""

    overrides: tuple[str, ...] = ()  # Hydra overrides, e.g. ("protocol.tasks=[occupancy,classification]",)
    inputs: tuple[str, ...] = ()  # encoder input modalities it runs with; empty: every compatible encoder
    targets: tuple[str, ...] = ()  # dataset targets it needs beyond what the roles check (e.g. a task set's)
    datasets: tuple[str, ...] = ()  # the synthetic datasets it runs on; empty: every compatible one
    tasks: tuple[str, ...] = ()  # the decoder tasks it runs with; empty: every compatible decoder
    encoders: tuple[str, ...] = ()  # the encoders it runs with (e.g. the paper's); empty: every compatible one


@dataclass(frozen=True)
class ParetoAxes:
    """The metrics a protocol's Pareto plot sets against each other."""

    size: str  # x: model size, lower is better
    quality: tuple[str, ...]  # y: the first of these the results have, higher is better


@dataclass(frozen=True)
class ProtocolCaps:
    roles: tuple[str, ...]  # component kinds it needs, e.g. ("dataset", "encoder", "decoder")
    tasks: tuple[str, ...] = ()  # decoder tasks it accepts (empty: no decoder role)
    # published tables (CSV stems in ../shared/reference) shown beside its leaderboard, and the
    # published metric name -> this protocol's metric name
    reference_tables: tuple[str, ...] = ()
    reference_metrics: Mapping[str, str] = field(default_factory=dict)
    primary_metric: str = ""  # leads its leaderboard and its per-class table
    bench: tuple[BenchVariant, ...] = (BenchVariant(),)  # what ``harness bench`` runs
    # protocols whose trained weights its runs reuse (harness.trained): ``harness bench`` queues their runs first, so
    # that parallel workers do not start two runs waiting on the same training
    reuses: tuple[str, ...] = ()
    encodings: tuple[str, ...] = ()  # encoding kinds it accepts from the encoder; empty: any
    # what its metrics' ``class_name`` holds when it is not a class (e.g. "configuration": one row per bit
    # configuration evaluated in a run); empty: classes
    breakdown: str = ""
    pareto: ParetoAxes | None = None  # a Pareto plot beside its leaderboard
    # figures beside its leaderboard: "module:function" called per dataset as function(dataset, frame) with the
    # dataset's current metrics (``Store.metrics`` rows plus each run's ``run_dir``); returns {file name: (caption,
    # PNG bytes)}, deterministic (regenerating from the same store and run folders gives identical files)
    figures: str = ""
    # the data it reads besides the run's dataset (e.g. the datasets another stage trains on, a weights file given
    # by path): "module:function" called as function(setup) with the run's ``harness.runner.RunSetup`` before the
    # run is claimed; returns {label: fingerprint} (content hashes), which enter the run's identity (changed data
    # reruns it) and are recorded with it; raises a ValueError/OSError naming the bad value when the data is unusable
    data_fingerprints: str = ""
    # what its papers claim, as comparisons between measured rows: judged on leaderboards/findings.md
    claims: tuple[Claim, ...] = ()
    # how its leaderboards name the trivial floor its runs record (metrics of split "floor", see harness.floors),
    # e.g. "majority training class"
    floor_label: str = ""


def load_attribute(path: str) -> Any:
    """The object a ``"module:attr"`` string names (``attr`` may be dotted), imported only now."""
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


Capabilities = EncoderCaps | DecoderCaps | DatasetCaps | CompressorCaps | ProtocolCaps

CAPS_BY_KIND: dict[Kind, type] = {
    Kind.ENCODER: EncoderCaps,
    Kind.DECODER: DecoderCaps,
    Kind.DATASET: DatasetCaps,
    Kind.COMPRESSOR: CompressorCaps,
    Kind.PROTOCOL: ProtocolCaps,
}


@dataclass(frozen=True)
class ComponentSpec:
    """One registered component.

    ``config`` is a dataclass whose defaults are the paper's sizes; ``profiles`` maps a profile name
    (``smoke``, ``quick``) to overrides of those fields, applied before the user's own overrides.
    """

    kind: Kind
    name: str
    factory: str | Callable[..., Any]
    config: type
    capabilities: Capabilities
    version: str = "0"
    citation: str = ""
    description: str = ""
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    plugin: str = ""  # the plugin that registered it, filled in by the registry

    def __post_init__(self) -> None:
        kind = Kind(self.kind)
        object.__setattr__(self, "kind", kind)
        if not self.name.isidentifier():
            raise ValueError(f"{kind} name {self.name!r} must be a Python identifier (it becomes a config option)")
        if not dataclasses.is_dataclass(self.config):
            raise TypeError(f"{kind} {self.name!r}: config must be a dataclass, got {self.config!r}")
        expected = CAPS_BY_KIND[kind]
        if not isinstance(self.capabilities, expected):
            raise TypeError(f"{kind} {self.name!r}: capabilities must be {expected.__name__}, "
                            f"got {type(self.capabilities).__name__}")
        fields = {f.name for f in dataclasses.fields(self.config)}
        for profile, overrides in self.profiles.items():
            unknown = sorted(set(overrides) - fields)
            if unknown:
                raise ValueError(f"{kind} {self.name!r}: profile {profile!r} overrides unknown config "
                                 f"field(s) {unknown}; fields are {sorted(fields)}")

    def load(self) -> Callable[..., Any]:
        """Import the factory (lazily, on first build)."""
        return self.factory if callable(self.factory) else load_attribute(self.factory)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)
