"""Hydra structured configs generated from the registry.

Every registered component's config dataclass becomes a config-group option (``encoder=pointnet``)
with a ``name`` field added, so a third-party plugin needs no YAML. Profiles work through Hydra's
defaults-list interpolation: ``optional encoder_profile: ${encoder}_${profile}`` selects the spec's
profile overrides, which land before command-line overrides, so ``encoder.hidden=64`` still wins.
Struct mode stays on: an unknown override key is an error naming it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from harness.registry import Registry
from harness.specs import ComponentSpec, Kind

PROFILES = ("smoke", "quick", "paper")
ROOT_CONFIG = "harness"
# The roles a run chooses on the command line; compressors are optional.
ROLES = (Kind.PROTOCOL, Kind.DATASET, Kind.ENCODER, Kind.DECODER)
# Keys that say where results go, not what is computed: left out of a run's identity.
NON_IDENTITY_KEYS = ("paths", "store", "force")


def harness_home() -> str:
    return os.environ.get("HARNESS_HOME", ".harness")


def default_store_url() -> str:
    return os.environ.get("HARNESS_STORE_URL", f"sqlite:///{harness_home()}/results.sqlite")


@dataclass
class PathsConfig:
    home: str = "${oc.env:HARNESS_HOME,.harness}"
    cache: str = "${oc.env:HARNESS_CACHE,${paths.home}/cache}"  # datasets: shareable, keyed by fingerprint
    runs: str = "${paths.home}/runs"
    leaderboards: str = "leaderboards"


@dataclass
class StoreConfig:
    url: str = "${oc.env:HARNESS_STORE_URL,sqlite:///${paths.home}/results.sqlite}"


def _defaults() -> list[Any]:
    defaults: list[Any] = ["_self_", {"protocol": "reconstruction"}, {"dataset": "synthetic_shapes"},
                           {"encoder": "pointnet"}, {"decoder": "occupancy"}, {"compressor": None},
                           {"profile": "quick"}]
    defaults += [{f"optional {kind}_profile": f"${{{kind}}}_${{profile}}"} for kind in ROLES]
    defaults += [{"override hydra/job_logging": "stdout"}]
    return defaults


@dataclass
class HarnessConfig:
    defaults: list[Any] = field(default_factory=_defaults)
    protocol: Any = MISSING
    dataset: Any = MISSING
    encoder: Any = MISSING
    decoder: Any = None
    compressor: Any = None
    profile: Any = MISSING
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N | auto (cuda when available)
    force: bool = False  # rerun even if this identity already succeeded
    paths: PathsConfig = field(default_factory=PathsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    hydra: Any = field(default_factory=lambda: {
        "run": {"dir": "${paths.home}/hydra/${now:%Y-%m-%d_%H-%M-%S}"},
        "sweep": {"dir": "${paths.home}/hydra/multirun_${now:%Y-%m-%d_%H-%M-%S}", "subdir": "${hydra.job.num}"},
        "output_subdir": None,
    })


def named_config(spec: ComponentSpec) -> type:
    """The spec's config dataclass with a ``name`` field holding the chosen option."""
    return make_dataclass(f"{spec.kind.value.title()}_{spec.name}", [("name", str, spec.name)], bases=(spec.config,))


def register_configs(registry: Registry) -> None:
    """Put the root config, profiles and every registered component into Hydra's ConfigStore."""
    store = ConfigStore.instance()
    store.store(name=ROOT_CONFIG, node=HarnessConfig)
    for profile in PROFILES:
        store.store(group="profile", name=profile, node={"name": profile})
    for kind in Kind:
        for spec in registry.specs(kind):
            store.store(group=kind.value, name=spec.name, node=named_config(spec))
            for profile, overrides in spec.profiles.items():
                store.store(group=f"{kind.value}_profile", name=f"{spec.name}_{profile}",
                            node=dict(overrides), package=kind.value)


def component_config(cfg: DictConfig, spec: ComponentSpec) -> Any:
    """The chosen component's config: an instance of (a subclass of) its spec's dataclass."""
    config = OmegaConf.to_object(cfg[spec.kind.value])
    if not isinstance(config, spec.config):
        raise TypeError(f"config of {spec.kind} {spec.name!r} did not resolve to {spec.config.__name__}")
    return config


def identity_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config that defines what a run computes."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in NON_IDENTITY_KEYS + ("hydra",):
        resolved.pop(key, None)
    return resolved
