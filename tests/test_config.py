"""Hydra configs generated from the registry: profiles, overrides, struct mode, third-party options."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

from harness.config import Locations, component_config, compose_config, identity_config, locations, register_configs
from harness.registry import PluginInfo, Registry
from harness.runner import run_identity
from harness.specs import ComponentSpec, EncoderCaps, Kind
from tests.test_registry import plugin


@dataclass
class ThirdPartyConfig:
    depth: int = 3


THIRD_PARTY = ComponentSpec(kind=Kind.ENCODER, name="third_party_net", factory="builtins:dict",
                            config=ThirdPartyConfig, capabilities=EncoderCaps(consumes="points", produces="global"),
                            profiles={"smoke": {"depth": 1}})


@pytest.fixture(scope="module")
def registry():
    registry = Registry.from_entry_points()  # not the process's shared one, which other tests bench
    if "third_party_net" not in registry.names(Kind.ENCODER):
        registry.add_plugin(plugin(register_encoders=lambda register: register(THIRD_PARTY)),
                            PluginInfo(name="third_party", module="tests"))
    register_configs(registry)
    return registry


@pytest.mark.parametrize("profile, hidden", [("smoke", 16), ("quick", 64), ("paper", 512)])
def test_profiles_select_each_components_overrides(registry, profile, hidden):
    cfg = compose_config([f"profile={profile}"])
    assert cfg.encoder.hidden == hidden
    assert cfg.profile.name == profile


def test_command_line_override_beats_the_profile(registry):
    cfg = compose_config(["profile=smoke", "encoder.hidden=64"])
    assert cfg.encoder.hidden == 64 and cfg.encoder.code_size == 16


def test_override_typo_is_an_error_naming_the_key(registry):
    with pytest.raises(ConfigCompositionException, match="encoder.hiden"):
        compose_config(["encoder.hiden=3"])


def test_unknown_option_lists_the_available_ones(registry):
    with pytest.raises(MissingConfigException, match="pointnet"):
        compose_config(["encoder=pointnt"])


def test_third_party_component_is_an_option_without_yaml(registry):
    cfg = compose_config(["encoder=third_party_net", "profile=smoke"])
    assert cfg.encoder.name == "third_party_net" and cfg.encoder.depth == 1
    config = component_config(cfg, THIRD_PARTY)
    assert isinstance(config, ThirdPartyConfig) and config.depth == 1


def test_identity_covers_config_and_versions_but_not_where_results_go(registry):
    specs = {"encoder": registry.get(Kind.ENCODER, "pointnet")}
    base = compose_config(["profile=smoke"])
    same = compose_config(["profile=smoke", "store.url=sqlite:///elsewhere.sqlite", "force=true"])
    other = compose_config(["profile=smoke", "seed=1"])
    assert "store" not in identity_config(base) and "paths" not in identity_config(base)
    assert run_identity(base, specs, "fp") == run_identity(same, specs, "fp")
    assert run_identity(base, specs, "fp") != run_identity(other, specs, "fp")
    assert run_identity(base, specs, "fp") != run_identity(base, specs, "fp2")
    bumped = {"encoder": ComponentSpec(**{**vars(specs["encoder"]), "version": "2"})}
    assert run_identity(base, specs, "fp") != run_identity(base, bumped, "fp")
    # the data a protocol reads besides the dataset: no data leaves the identity as it was, changed data changes it
    assert run_identity(base, specs, "fp", data={}) == run_identity(base, specs, "fp")
    assert run_identity(base, specs, "fp", data={"source": "a"}) != run_identity(base, specs, "fp",
                                                                              data={"source": "b"})


def test_locations_come_from_the_composed_paths_and_store(registry, tmp_path, monkeypatch):
    """One source for where runs go: the composed ``paths.home`` and ``store.url`` with their environment defaults,
    so moving the home moves the store unless the store is named."""
    monkeypatch.delenv("HARNESS_HOME", raising=False)
    monkeypatch.delenv("HARNESS_STORE_URL", raising=False)
    assert locations(registry) == Locations(Path(".harness"), "sqlite:///.harness/results.sqlite")
    moved = locations(registry, [f"paths.home={tmp_path}"])
    assert moved == Locations(tmp_path, f"sqlite:///{tmp_path}/results.sqlite")
    assert locations(registry, [f"paths.home={tmp_path}", "store.url=sqlite:////s.db"]).store_url == "sqlite:////s.db"
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "env"))
    assert locations(registry).store_url == f"sqlite:///{tmp_path}/env/results.sqlite"
    monkeypatch.setenv("HARNESS_STORE_URL", "sqlite:////elsewhere.db")
    assert locations(registry, [f"paths.home={tmp_path}"]) == Locations(tmp_path, "sqlite:////elsewhere.db")
