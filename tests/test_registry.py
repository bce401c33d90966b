"""Plugin loading is isolated, lookups explain themselves, misspelled hooks are caught."""
from __future__ import annotations

import types
from dataclasses import dataclass

import pytest

from harness.hooks import hookimpl
from harness.registry import PluginInfo, Registry, UnknownComponentError, default_registry
from harness.specs import ComponentSpec, DatasetCaps, DecoderCaps, EncoderCaps, Kind


@dataclass
class TinyConfig:
    width: int = 8


def encoder_spec(name: str) -> ComponentSpec:
    return ComponentSpec(kind=Kind.ENCODER, name=name, factory="builtins:dict", config=TinyConfig,
                         capabilities=EncoderCaps(consumes="points", produces="global"))


def plugin(**hooks) -> types.ModuleType:
    module = types.ModuleType("fake_plugin")
    for name, function in hooks.items():
        setattr(module, name, hookimpl(function))
    return module


def registry_with(*plugins: tuple[str, types.ModuleType]) -> Registry:
    registry = Registry()
    for name, module in plugins:
        registry.add_plugin(module, PluginInfo(name=name, module=name))
    return registry


def test_builtin_components_register_through_entry_points():
    registry = default_registry()
    assert "pointnet" in registry.names(Kind.ENCODER)
    assert "occupancy" in registry.names(Kind.DECODER)
    assert "reconstruction" in registry.names(Kind.PROTOCOL)
    assert "synthetic_shapes" in registry.names(Kind.DATASET)
    assert registry.get(Kind.ENCODER, "pointnet").plugin == "builtin_encoders"
    assert all(p.status == "loaded" for p in registry.plugins), [p.error for p in registry.plugins]


def test_a_raising_plugin_is_reported_and_the_others_still_work():
    def broken(register):
        register(encoder_spec("half_registered"))
        raise RuntimeError("boom while registering")

    registry = registry_with(("good", plugin(register_encoders=lambda register: register(encoder_spec("alpha")))),
                             ("bad", plugin(register_encoders=broken)))
    assert registry.names(Kind.ENCODER) == ["alpha"]  # the bad plugin's partial registration is dropped
    bad = next(p for p in registry.plugins if p.name == "bad")
    assert bad.status == "failed" and "boom while registering" in bad.error
    with pytest.raises(UnknownComponentError) as info:
        registry.get(Kind.ENCODER, "half_registered")
    message = str(info.value)
    assert "its plugin 'bad' failed" in message and "boom while registering" in message


def test_lookup_error_names_kind_near_matches_and_everything_available():
    registry = registry_with(("p", plugin(register_encoders=lambda register: [register(encoder_spec(n))
                                                                             for n in ("pointnet", "resnet")])))
    with pytest.raises(UnknownComponentError) as info:
        registry.get(Kind.ENCODER, "pointnt")
    message = str(info.value)
    assert "unknown encoder 'pointnt'" in message
    assert "Did you mean 'pointnet'" in message
    assert "Available encoders: pointnet, resnet" in message
    assert "failed" not in message  # no plugin failed, so it is simply not registered


def test_misspelled_hook_implementation_is_an_error_not_silence():
    registry = registry_with(("typo", plugin(register_encoder=lambda register: None)))
    typo = registry.plugins[0]
    assert typo.status == "failed"
    assert "register_encoder" in typo.error


def test_duplicate_names_and_wrong_hook_are_rejected_with_reasons():
    dataset = ComponentSpec(kind=Kind.DATASET, name="d", factory="builtins:dict", config=TinyConfig,
                            capabilities=DatasetCaps(modalities=("points",), targets=("occupancy",)))
    registry = registry_with(("first", plugin(register_encoders=lambda register: register(encoder_spec("x")))),
                             ("second", plugin(register_encoders=lambda register: register(encoder_spec("x")))),
                             ("wrong", plugin(register_encoders=lambda register: register(dataset))))
    errors = {p.name: p.error for p in registry.plugins}
    assert "already registered by plugin 'first'" in errors["second"]
    assert "register it from register_datasets" in errors["wrong"]
    assert registry.get(Kind.ENCODER, "x").plugin == "first"


def test_disabled_plugins_are_skipped(monkeypatch):
    monkeypatch.setenv("HARNESS_DISABLE_PLUGINS", "builtin_decoders")
    registry = Registry.from_entry_points()
    assert registry.names(Kind.DECODER) == []
    status = {p.name: p.status for p in registry.plugins}
    assert status["builtin_decoders"] == "disabled"
    with pytest.raises(UnknownComponentError, match="disabled by HARNESS_DISABLE_PLUGINS"):
        registry.get(Kind.DECODER, "occupancy")


def test_spec_validation_is_explicit():
    with pytest.raises(TypeError, match="capabilities must be DecoderCaps"):
        ComponentSpec(kind=Kind.DECODER, name="d", factory="builtins:dict", config=TinyConfig,
                      capabilities=EncoderCaps(consumes="points", produces="global"))
    with pytest.raises(ValueError, match=r"profile 'smoke' overrides unknown config field\(s\) \['widht'\]"):
        ComponentSpec(kind=Kind.DECODER, name="d", factory="builtins:dict", config=TinyConfig,
                      capabilities=DecoderCaps(consumes=("global",), task="occupancy"),
                      profiles={"smoke": {"widht": 2}})


def test_specs_build_lazily_from_module_paths():
    spec = default_registry().get(Kind.ENCODER, "pointnet")
    assert isinstance(spec.factory, str)  # nothing imported until build
    assert callable(spec.load())
