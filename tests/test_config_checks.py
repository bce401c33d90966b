"""check_run_config: keys a config lacks (even added with ``+``) and degenerate values are refused, naming the key,
before a run is recorded; every shipped bench setting passes."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.bench import combinations
from harness.config import ConfigError, check_run_config, compose_config, register_configs
from harness.config_checks import FieldError, require_positive
from harness.registry import PluginInfo, Registry, default_registry
from harness.runner import resolve_specs
from harness.specs import ComponentSpec, EncoderCaps, Kind
from harness.training_config import TrainingConfig
from tests.test_registry import plugin


@pytest.fixture(scope="module")
def registry():
    registry = default_registry()
    register_configs(registry)
    return registry


def check(registry, *overrides: str) -> None:
    cfg = compose_config(list(overrides))
    check_run_config(cfg, resolve_specs(cfg, registry))


@pytest.mark.parametrize("overrides, message", [
    (["+encoder.hiden=3"], r"^encoder 'pointnet' has no field 'hiden' \(did you mean 'hidden'\?\); its fields: hidden, "
                           r"code_size$"),
    (["+foo=1"], r"^the run config has no field 'foo'; its fields: protocol, dataset, encoder, .*seed"),
    (["+decoder.blokcs=2"], r"^decoder 'occupancy' has no field 'blokcs' \(did you mean 'blocks'\?\)"),
    (["+protocol.stpes=2"], r"^protocol 'reconstruction' has no field 'stpes' \(did you mean 'steps'\?\)"),
    (["+paths.hom=x"], r"^paths has no field 'hom' \(did you mean 'home'\?\)"),
    (["encoder.hidden=0"], r"^encoder\.hidden=0: must be > 0 \(encoder 'pointnet'\)$"),
    (["encoder=ndf", "encoder.channels=[8,0,8]"], r"^encoder\.channels=\[8, 0, 8\]: every entry must be > 0"),
    (["decoder.hidden=-4"], r"^decoder\.hidden=-4: must be > 0 \(decoder 'occupancy'\)$"),
    (["protocol.steps=0"], r"^protocol\.steps=0: must be > 0 unless epochs > 0 .*\(protocol 'reconstruction'\)$"),
    (["protocol.steps=-1", "protocol.epochs=2"], r"^protocol\.steps=-1: must be >= 0"),
    (["protocol.validate_every=0"], r"^protocol\.validate_every=0: must be > 0 \(protocol 'reconstruction'\)$"),
    (["protocol.batch_size=0"], r"^protocol\.batch_size=0: must be > 0"),
    (["protocol.checkpoint_every=0"], r"^protocol\.checkpoint_every=0: must be > 0"),
    (["protocol.lr=0"], r"^protocol\.lr=0\.0: must be > 0"),
    (["protocol.schedule=linear"], r"^protocol\.schedule='linear': expected one of \['constant', 'cosine'\]"),
    (["protocol=compression", "compressor=bfp", "compressor.block=0"], r"^compressor\.block=0: must be > 0 "
                                                                        r"\(compressor 'bfp'\)$"),
    (["seed=-1"], r"^seed=-1: must be in 0 \.\. 4294967295"),
    ([f"seed={2**32}"], r"^seed=4294967296: must be in 0 \.\. 4294967295"),
])
def test_refused_with_the_key_named(registry, overrides, message):
    with pytest.raises(ConfigError, match=message):
        check(registry, "profile=smoke", *overrides)


def test_the_edges_of_what_is_accepted(registry):
    check(registry, "profile=smoke", f"seed={2**32 - 1}")
    check(registry, "profile=smoke", "protocol=classification", "protocol.steps=0", "protocol.epochs=1")
    check(registry, "profile=smoke", "protocol=classification", "decoder=classifier", "decoder.hidden=0")


@pytest.mark.parametrize("profile", ["quick", "smoke"])
def test_every_bench_combination_passes(registry, profile):
    refused = []
    for combination in combinations(registry):
        try:
            check(registry, *combination.overrides(), f"profile={profile}")
        except ConfigError as error:
            refused.append(f"{combination.overrides()}: {error}")
    assert not refused


def test_a_config_checks_itself_when_built_in_code():
    with pytest.raises(FieldError, match="^validate_every=0: must be > 0$"):
        TrainingConfig(validate_every=0)
    assert TrainingConfig(steps=0, epochs=1.0).steps == 0  # whole passes instead of a step count


@dataclass
class WidthConfig:
    width: int = 8

    def __post_init__(self) -> None:
        require_positive(self, "width")


@dataclass
class DepthConfig:
    depth: int = 1

    def __post_init__(self) -> None:
        if self.depth > 3:
            raise ValueError(f"depth={self.depth} is deeper than this network goes")


def test_third_party_configs_get_the_same_checks():
    caps = EncoderCaps(consumes="points", produces="global")
    specs = [ComponentSpec(kind=Kind.ENCODER, name=name, factory="builtins:dict", config=config, capabilities=caps)
             for name, config in (("checks_width", WidthConfig), ("checks_depth", DepthConfig))]
    registry = Registry.from_entry_points()  # not the process-wide default registry, which other tests enumerate
    registry.add_plugin(plugin(register_encoders=lambda register: [register(spec) for spec in specs]),
                        PluginInfo(name="checks_third_party", module="tests"))
    register_configs(registry)
    check(registry, "profile=smoke", "encoder=checks_width", "encoder.width=3")
    with pytest.raises(ConfigError, match=r"^encoder\.width=0: must be > 0 \(encoder 'checks_width'\)$"):
        check(registry, "profile=smoke", "encoder=checks_width", "encoder.width=0")
    with pytest.raises(ConfigError, match=r"^encoder 'checks_depth': depth=9 is deeper than this network goes$"):
        check(registry, "profile=smoke", "encoder=checks_depth", "encoder.depth=9")
