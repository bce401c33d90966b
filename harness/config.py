"""Hydra structured configs generated from the registry.

Every registered component's config dataclass becomes a config-group option (``encoder=pointnet``)
with a ``name`` field added, so a third-party plugin needs no YAML. Profiles work through Hydra's
defaults-list interpolation: ``optional encoder_profile: ${encoder}_${profile}`` selects the spec's
profile overrides, which land before command-line overrides, so ``encoder.hidden=64`` still wins.
Struct mode stays on: an unknown override key is an error naming it; a key added with ``+`` (which struct mode
lets through) and a degenerate value are refused by :func:`check_run_config` before a run is recorded.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import MISSING, DictConfig, OmegaConf

from harness.config_checks import ConfigError, FieldError
from harness.registry import Registry
from harness.specs import ComponentSpec, Kind

PROFILES = ("smoke", "quick", "paper")
ROOT_CONFIG = "harness"
# The roles a run chooses on the command line; compressors are optional.
ROLES = (Kind.PROTOCOL, Kind.DATASET, Kind.ENCODER, Kind.DECODER)
# Keys that say where results go, not what is computed: left out of a run's identity.
NON_IDENTITY_KEYS = ("paths", "store", "force")
# Seeds a run accepts: numpy's legacy seeding (np.random.seed) takes 0 .. 2**32 - 1, torch and Python take more.
SEED_RANGE = (0, 2**32 - 1)


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
    seed: int = 0  # in SEED_RANGE
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


def compose_config(overrides: Sequence[str]) -> DictConfig:
    """Compose the root config outside ``hydra.main`` (the bench loops in one process; tests build runs), after
    :func:`register_configs`."""
    GlobalHydra.instance().clear()
    with initialize(version_base="1.3", config_path=None):
        return compose(config_name=ROOT_CONFIG, overrides=list(overrides))


@dataclass(frozen=True)
class Locations:
    """Where a command's runs go: its harness home and its results store."""

    home: Path
    store_url: str


def locations(registry: Registry, overrides: Sequence[str] = ()) -> Locations:
    """The harness home and store URL that runs with these overrides record into, read from the composed config:
    ``paths.home`` and ``store.url`` with their environment defaults (``HARNESS_HOME``, ``HARNESS_STORE_URL``), so
    ``paths.home=/x`` moves the store with it and no command restates the defaults."""
    register_configs(registry)
    cfg = compose_config(overrides)
    return Locations(home=Path(cfg.paths.home), store_url=str(cfg.store.url))


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


def check_run_config(cfg: DictConfig, specs: Mapping[str, ComponentSpec]) -> None:
    """Refuse a composed run config before anything is built or recorded: a key that its config lacks (one added
    with ``+``, which struct mode lets through, would otherwise become part of a new run identity), a seed out of
    :data:`SEED_RANGE`, and a value the component's config dataclass refuses in ``__post_init__`` (see
    :mod:`harness.config_checks`). ``specs`` maps each role to its chosen spec (``harness.runner.resolve_specs``).
    Raises :class:`ConfigError` with a one-line message naming the key."""
    _check_keys(cfg, _root_keys(), "the run config")
    for key, config_type in (("paths", PathsConfig), ("store", StoreConfig)):
        _check_keys(cfg[key], _field_names(config_type), key)
    _check_keys(cfg.profile, ["name"], f"profile {cfg.profile.name!r}")
    low, high = SEED_RANGE
    if not low <= cfg.seed <= high:
        raise ConfigError(f"seed={cfg.seed}: must be in {low} .. {high} (numpy's seed range)")
    for role, spec in specs.items():
        owner = f"{role} {spec.name!r}"
        _check_keys(cfg[role], _field_names(spec.config), owner, also=("name",))
        try:
            component_config(cfg, spec)  # builds the dataclass: its __post_init__ checks run
        except FieldError as error:
            raise ConfigError(f"{role}.{error.field}={error.value!r}: {error.requirement} ({owner})") from error
        except ValueError as error:  # a plugin's own check that does not name a field
            raise ConfigError(f"{owner}: {error}") from error


def _field_names(config_type: type) -> list[str]:
    return [f.name for f in fields(config_type)]


def _root_keys() -> list[str]:
    """The root config's keys; ``defaults`` and ``hydra`` are Hydra's, never in a composed config."""
    return [name for name in _field_names(HarnessConfig) if name not in ("defaults", "hydra")]


def _check_keys(node: DictConfig, names: Sequence[str], owner: str, also: Sequence[str] = ()) -> None:
    """Every key of ``node`` is one of ``names`` (listed in the error) or ``also``; the error suggests the closest."""
    for key in node:
        if key not in names and key not in also:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{owner} has no field {key!r}{hint}; its fields: {', '.join(names)}")
