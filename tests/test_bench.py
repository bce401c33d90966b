"""The bench's plan comes from capabilities alone: compatible combinations, once per protocol variant."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.bench import Combination, combinations
from harness.registry import PluginInfo, Registry
from harness.specs import (BenchVariant, ComponentSpec, DatasetCaps, DecoderCaps, EncoderCaps, Kind,
                           ProtocolCaps)
from tests.test_registry import plugin


@dataclass
class Empty:
    pass


def spec(kind: Kind, name: str, caps) -> ComponentSpec:
    return ComponentSpec(kind=kind, name=name, factory="builtins:dict", config=Empty, capabilities=caps)


def registry_of(specs: list[ComponentSpec]) -> Registry:
    """A registry holding ``specs``, registered by one plugin."""
    def register_all(kind):
        return lambda register: [register(s) for s in specs if s.kind == kind]

    registry = Registry()
    registry.add_plugin(plugin(register_datasets=register_all(Kind.DATASET), register_encoders=register_all(Kind.ENCODER),
                               register_decoders=register_all(Kind.DECODER),
                               register_protocols=register_all(Kind.PROTOCOL)), PluginInfo("p", "p"))
    return registry


def test_variants_multiply_combinations_and_respect_input_modalities():
    specs = [
        spec(Kind.DATASET, "shapes", DatasetCaps(modalities=("points", "image"), targets=("occupancy",),
                                                 synthetic=True)),
        spec(Kind.DATASET, "real", DatasetCaps(modalities=("points",), targets=("occupancy",))),
        spec(Kind.ENCODER, "cloud", EncoderCaps(consumes="points", produces="global")),
        spec(Kind.ENCODER, "picture", EncoderCaps(consumes="image", produces="global")),
        spec(Kind.DECODER, "occ", DecoderCaps(consumes=("global",), task="occupancy")),
        spec(Kind.PROTOCOL, "recon", ProtocolCaps(roles=("dataset", "encoder", "decoder"), tasks=("occupancy",))),
        spec(Kind.PROTOCOL, "multi", ProtocolCaps(roles=("dataset", "encoder"), bench=(
            BenchVariant(("protocol.tasks=[a]",)), BenchVariant(("protocol.tasks=[a,b]",), inputs=("points",))))),
    ]
    assert list(combinations(registry_of(specs))) == [  # only the synthetic dataset; sorted by protocol, encoder
        Combination("multi", "shapes", "cloud", None, ("protocol.tasks=[a]",)),
        Combination("multi", "shapes", "cloud", None, ("protocol.tasks=[a,b]",)),
        Combination("multi", "shapes", "picture", None, ("protocol.tasks=[a]",)),
        Combination("recon", "shapes", "cloud", "occ"),
        Combination("recon", "shapes", "picture", "occ"),
    ]
    assert Combination("multi", "shapes", "cloud", None, ("protocol.tasks=[a]",)).overrides() == [
        "protocol=multi", "dataset=shapes", "encoder=cloud", "protocol.tasks=[a]"]


def test_variants_filter_by_targets_datasets_and_tasks_and_encoders_bring_their_head_overrides():
    specs = [
        spec(Kind.DATASET, "shapes", DatasetCaps(modalities=("points",), targets=("occupancy", "label"),
                                                 synthetic=True)),
        spec(Kind.DATASET, "voxels", DatasetCaps(modalities=("voxels",), targets=("label",), synthetic=True)),
        spec(Kind.ENCODER, "cloud", EncoderCaps(consumes="points", produces="global")),
        spec(Kind.ENCODER, "vox", EncoderCaps(consumes="voxels", produces="global", bench_datasets=("voxels",),
                                              bench_heads={"cls": ("decoder.hidden=0",)})),
        spec(Kind.ENCODER, "vox2", EncoderCaps(consumes="voxels", produces="global", bench_datasets=("other",))),
        spec(Kind.DECODER, "occ", DecoderCaps(consumes=("global",), task="occupancy")),
        spec(Kind.DECODER, "cls", DecoderCaps(consumes=("global",), task="classification")),
        spec(Kind.PROTOCOL, "squeeze", ProtocolCaps(roles=("dataset", "encoder", "decoder"),
                                                    tasks=("occupancy", "classification"), bench=(
            BenchVariant(("a",), datasets=("voxels",)), BenchVariant(("b",), tasks=("occupancy",))))),
        spec(Kind.PROTOCOL, "multi", ProtocolCaps(roles=("dataset", "encoder"), bench=(
            BenchVariant(("c",), targets=("occupancy", "label")),))),
    ]
    assert list(combinations(registry_of(specs))) == [
        Combination("multi", "shapes", "cloud", None, ("c",)),  # voxels lack occupancy targets
        Combination("squeeze", "shapes", "cloud", "occ", ("b",)),  # only occupancy decoders for variant b
        Combination("squeeze", "voxels", "vox", "cls", ("decoder.hidden=0", "a")),  # vox2 is benched elsewhere
    ]


def test_parallel_bench_records_the_same_runs_as_the_sequential_one(tmp_path, monkeypatch):
    """Two runs at a time in worker processes: every run succeeds and is stored under the identity a
    sequential bench gives it (which then skips them all)."""
    from harness.bench import run_bench
    from harness.config import locations
    from harness.registry import default_registry
    from harness.store import Store

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    parallel = run_bench(default_registry(), "smoke", protocols=["classification"], jobs=2)
    assert len(parallel) >= 2 and all(outcome and outcome.status == "succeeded" for _, outcome, _ in parallel)
    sequential = run_bench(default_registry(), "smoke", protocols=["classification"])
    assert [c for c, _, _ in sequential] == [c for c, _, _ in parallel]
    assert [o.identity for _, o, _ in sequential] == [o.identity for _, o, _ in parallel]
    assert {o.status for _, o, _ in sequential} == {"skipped"}
    runs = Store(locations(default_registry()).store_url).runs()
    assert sorted(runs["identity"]) == sorted(o.identity for _, o, _ in parallel)


def test_protocols_run_after_those_whose_trainings_they_reuse():
    import pytest

    from harness.bench import reuse_order

    def protocol(name: str, *reuses: str) -> ComponentSpec:
        return spec(Kind.PROTOCOL, name, ProtocolCaps(roles=("dataset",), reuses=reuses))

    order = reuse_order([protocol("compress", "train", "fit"), protocol("alpha"), protocol("train"),
                         protocol("fit", "train"), protocol("lone", "unregistered")])
    # by name, but "compress" waits for "fit" and "train", and "fit" for "train"; an unknown name is no constraint
    assert [p.name for p in order] == ["alpha", "lone", "train", "fit", "compress"]
    with pytest.raises(ValueError, match="cycle"):
        reuse_order([protocol("a", "b"), protocol("b", "a")])


def test_every_registered_encoder_and_decoder_is_benched():
    """Each encoder is the encoder of some bench combination; each decoder is the decoder of one, or a head that a
    benched protocol picks itself (its config's ``heads``, e.g. contextualise's udf, semantic and contextualiser)."""
    from harness.registry import default_registry

    registry = default_registry()
    benched = list(combinations(registry))
    encoders = {c.encoder for c in benched}
    decoders = {c.decoder for c in benched if c.decoder}
    for name in {c.protocol for c in benched}:
        heads = getattr(registry.get(Kind.PROTOCOL, name).config(), "heads", {})
        decoders |= set(heads.values())
    assert encoders == {spec.name for spec in registry.specs(Kind.ENCODER)}
    assert decoders >= {spec.name for spec in registry.specs(Kind.DECODER)}


def test_quantisation_bench_schedules_fit_the_smoke_models(tmp_path, monkeypatch):
    """The bench's per-layer bit schedules are written for ResNet-20's 19 layers: the smoke profile keeps that depth
    (it had 8, and ``harness bench --profile smoke`` failed the schedule runs)."""
    from harness.bench import run_bench
    from harness.registry import default_registry

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    results = run_bench(default_registry(), "smoke", protocols=["quantisation"])
    assert results and [o.status if o else error for _, o, error in results] == ["succeeded"] * len(results)


@pytest.mark.slow
def test_every_smoke_bench_combination_succeeds(tmp_path, monkeypatch):
    from harness.bench import run_bench
    from harness.registry import default_registry

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    results = run_bench(default_registry(), "smoke", jobs=2)
    failed = [(str(c), error) for c, o, error in results if o is None or o.status != "succeeded"]
    assert len(results) >= 33 and not failed, failed
