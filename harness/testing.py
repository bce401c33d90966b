"""The checks every registered component must pass, as a pytest suite a plugin runs on itself.

A plugin's tests get every check for its own components by subclassing :class:`ComponentContract` (pytest collects
it under a ``Test`` name; the harness's own tests run it with ``plugin = None``, on everything registered)::

    from harness.testing import ComponentContract

    class TestMyPlugin(ComponentContract):
        plugin = "my_plugin"  # its entry-point name in the group "harness"

What is checked, per component of the plugin (each test is parametrised over them, and skipped where it has none),
against the contracts of :mod:`harness.contracts`:

- its plugin module imports none of :data:`HEAVY` (``harness list`` imports every plugin to read the specs);
- every kind: its config composes through Hydra at each profile (``<kind>=<name> profile=<p>``) into an instance of
  its config dataclass equal to the dataclass built from that profile's overrides (none: the paper's defaults);
- protocols and compressors: built at the smoke profile, they are a ``RunProtocol`` / ``Compressor``;
- encoders: built at every profile, they declare the encoding kind of their spec; at the smoke profile, two
  training items of a synthetic dataset of the modality they consume (one they are benched on where possible)
  encode to that kind and the width ``encoding`` declares (a ``grid`` encoding's width is a whole multiple of its
  volumes' channels);
- decoders: built at the smoke profile on an encoding of each kind it consumes, for a synthetic dataset with its
  task's target; an encoding kind it does not consume is refused with an error naming the decoder;
- synthetic datasets: built at the smoke profile, they declare the modalities and targets of their spec, every split
  has items, and a training item carries each declared modality.

Datasets are generated into ``HARNESS_CACHE`` (a temporary folder if unset) and shared by the checks.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness.contracts import Compressor, Dataset, Encoder, RunProtocol
from harness.data import DatasetInfo
from harness.registry import Registry, default_registry
from harness.specs import ENCODING_KINDS, TASK_TARGETS, ComponentSpec, Kind

SMOKE = "smoke"
ITEMS = 2  # training items an encoder is checked on
# what a plugin module must not import: the libraries building, training or generating a component needs
HEAVY = ("torch", "trimesh", "igl", "manifold3d", "PIL")


class ComponentContract:
    """The contract suite; ``plugin`` picks whose components it checks (None: every registered one)."""

    plugin: ClassVar[str | None] = None

    # ----- parametrisation ------------------------------------------------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Each test names what it checks by its argument: ``spec`` (any kind), ``protocol_or_compressor``,
        ``encoder``, ``decoder``, ``synthetic_dataset`` or ``plugin_module``."""
        registry = default_registry()
        chosen = {"spec": list(self._specs(registry, *Kind)),
                  "protocol_or_compressor": list(self._specs(registry, Kind.PROTOCOL, Kind.COMPRESSOR)),
                  "encoder": list(self._specs(registry, Kind.ENCODER)),
                  "decoder": list(self._specs(registry, Kind.DECODER)),
                  "synthetic_dataset": [s for s in self._specs(registry, Kind.DATASET) if s.capabilities.synthetic]}
        for argument, specs in chosen.items():
            if argument in metafunc.fixturenames:
                metafunc.parametrize(argument, specs, ids=[f"{s.kind.value}:{s.name}" for s in specs])
        if "plugin_module" in metafunc.fixturenames:
            modules = sorted({p.module for p in registry.plugins
                              if p.status == "loaded" and (self.plugin is None or p.name == self.plugin)})
            metafunc.parametrize("plugin_module", modules)

    def _specs(self, registry: Registry, *kinds: Kind) -> Iterator[ComponentSpec]:
        if self.plugin is not None and self.plugin not in {p.name for p in registry.plugins}:
            raise LookupError(f"ComponentContract.plugin = {self.plugin!r} is not a loaded plugin; loaded: "
                              f"{sorted(p.name for p in registry.plugins)}")
        for kind in kinds:
            yield from (s for s in registry.specs(kind) if self.plugin is None or s.plugin == self.plugin)

    # ----- every kind -----------------------------------------------------------------------------------------
    def test_plugin_module_imports_nothing_heavy(self, plugin_module: str) -> None:
        code = (f"import sys, importlib; importlib.import_module({plugin_module!r}); "
                f"heavy = sorted({set(HEAVY)!r} & set(sys.modules)); "
                f"assert not heavy, f'importing {plugin_module} imports {{heavy}}'")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    def test_config_composes_at_every_profile(self, spec: ComponentSpec) -> None:
        from harness.config import PROFILES, component_config, compose_config, register_configs

        register_configs(default_registry())
        for profile in PROFILES:
            composed = component_config(compose_config([f"{spec.kind.value}={spec.name}", f"profile={profile}"]), spec)
            expected = spec.config(**spec.profiles.get(profile, {}))
            assert _values(composed) == _values(expected), f"{spec.kind.value} {spec.name}, profile {profile}"

    def test_protocol_or_compressor_builds_to_its_contract(self, protocol_or_compressor: ComponentSpec) -> None:
        spec = protocol_or_compressor
        contract = RunProtocol if spec.kind == Kind.PROTOCOL else Compressor
        built = spec.build(_smoke_config(spec))
        assert isinstance(built, contract), f"{spec.kind.value} {spec.name} gives a {type(built).__name__}, " \
                                            f"which lacks {contract.__name__}'s methods"

    # ----- encoders -------------------------------------------------------------------------------------------
    def test_encoder_builds_at_every_profile(self, encoder: ComponentSpec) -> None:
        from harness.config import PROFILES

        info = _synthetic_dataset(encoder.capabilities.consumes, preferred=encoder.capabilities.bench_datasets).info
        for profile in PROFILES:
            network = encoder.build(encoder.config(**encoder.profiles.get(profile, {})), info)
            assert network.encoding.kind == encoder.capabilities.produces, (profile, network.encoding)

    def test_encoder_encodes_what_it_declares(self, encoder: ComponentSpec) -> None:
        import torch
        from torch.utils.data import default_collate

        caps = encoder.capabilities
        dataset = _synthetic_dataset(caps.consumes, preferred=caps.bench_datasets)
        network = encoder.build(_smoke_config(encoder), dataset.info)
        assert isinstance(network, Encoder), f"encoder {encoder.name} has no ``encoding``"
        assert network.encoding.kind == caps.produces, (network.encoding, caps)
        split = dataset.split("train")
        batch = default_collate([{caps.consumes: split[i][caps.consumes]} for i in range(ITEMS)])
        network.eval()
        with torch.no_grad():
            encoding = network(batch[caps.consumes])
        _check_encoding(encoding, network.encoding.kind, network.encoding.dim, f"encoder {encoder.name}")

    # ----- decoders -------------------------------------------------------------------------------------------
    def test_decoder_builds_on_what_it_consumes_and_refuses_the_rest(self, decoder: ComponentSpec) -> None:
        from harness.encoding import EncodingInfo

        caps = decoder.capabilities
        info = _info_with_target(TASK_TARGETS.get(caps.task))
        for kind in caps.consumes:
            assert decoder.build(_smoke_config(decoder), EncodingInfo(kind, 16), info) is not None
        for kind in sorted(set(ENCODING_KINDS) - set(caps.consumes)):
            with pytest.raises(ValueError, match=decoder.name):
                decoder.build(_smoke_config(decoder), EncodingInfo(kind, 16), info)

    # ----- datasets -------------------------------------------------------------------------------------------
    def test_synthetic_dataset_gives_what_it_declares(self, synthetic_dataset: ComponentSpec) -> None:
        caps = synthetic_dataset.capabilities
        dataset = _build_dataset(synthetic_dataset)
        assert isinstance(dataset, Dataset), f"dataset {synthetic_dataset.name} lacks ``info`` or ``split``"
        assert set(dataset.info.modalities) == set(caps.modalities), (dataset.info.modalities, caps.modalities)
        assert set(caps.targets) <= set(dataset.info.targets), (caps.targets, dataset.info.targets)
        for name in dataset.info.splits:
            assert len(dataset.split(name)) > 0, f"{synthetic_dataset.name} split {name} is empty"
        item = dataset.split("train")[0]
        missing = [m for m in caps.modalities if m not in item]
        assert not missing, f"{synthetic_dataset.name}: a training item lacks {missing}"


def _values(config: Any) -> dict[str, Any]:
    """A config's field values, lists and tuples alike (Hydra gives lists for tuple defaults)."""
    def plain(value: Any) -> Any:
        return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

    return {f.name: plain(getattr(config, f.name)) for f in fields(config) if f.name != "name"}


def _smoke_config(spec: ComponentSpec) -> Any:
    return spec.config(**spec.profiles.get(SMOKE, {}))


def _cache_dir() -> Path:
    path = os.environ.get("HARNESS_CACHE")
    if path is None:
        path = os.environ["HARNESS_CACHE"] = tempfile.mkdtemp(prefix="harness_contract_cache_")
    return Path(path)


def _build_dataset(spec: ComponentSpec) -> Any:
    return _built_dataset(spec.name, _cache_dir())


@functools.lru_cache(maxsize=None)
def _built_dataset(name: str, cache_dir: Path) -> Any:
    """A registered dataset built at the smoke profile once per cache: several checks read the same one."""
    spec = default_registry().get(Kind.DATASET, name)
    return spec.build(_smoke_config(spec), cache_dir=cache_dir)


def _synthetic_datasets() -> list[ComponentSpec]:
    return [s for s in default_registry().specs(Kind.DATASET) if s.capabilities.synthetic]


def _synthetic_dataset(modality: str, preferred: tuple[str, ...] = ()) -> Any:
    """A synthetic dataset giving ``modality``, built at the smoke profile: one of ``preferred`` where possible."""
    candidates = [s for s in _synthetic_datasets() if modality in s.capabilities.modalities]
    candidates.sort(key=lambda s: s.name not in preferred)
    if not candidates:
        pytest.skip(f"no registered synthetic dataset gives {modality!r}")
    return _build_dataset(candidates[0])


def _info_with_target(target: str | None) -> DatasetInfo:
    """The info of a smoke synthetic dataset with ``target``; for a task that declares none (several heads, whose
    protocol checks the targets), the synthetic dataset with the most targets."""
    candidates = [s for s in _synthetic_datasets() if target is None or target in s.capabilities.targets]
    candidates.sort(key=lambda s: (-len(s.capabilities.targets), s.name))
    if not candidates:
        pytest.skip(f"no registered synthetic dataset has the target {target!r}")
    return _build_dataset(candidates[0]).info


def _check_encoding(encoding: Any, kind: str, dim: int, what: str) -> None:
    """``encoding`` is of ``kind`` (see :mod:`harness.encoding`) for a batch of :data:`ITEMS`, ``dim`` wide."""
    import torch

    if kind == "global":
        assert isinstance(encoding, torch.Tensor) and encoding.shape == (ITEMS, dim), (what, _shape(encoding))
    elif kind == "points":
        xyz, features = encoding
        assert xyz.shape[0] == ITEMS and xyz.shape[2] == 3, (what, xyz.shape)
        assert features.shape == (ITEMS, xyz.shape[1], dim), (what, features.shape)
    elif kind == "grid":
        assert all(volume.dim() == 5 and volume.shape[0] == ITEMS for volume in encoding), (what, _shape(encoding))
        # the sampled features of a query may include displaced copies (NDF samples 7 points per query)
        channels = sum(volume.shape[1] for volume in encoding)
        assert dim % channels == 0, (what, dim, [v.shape for v in encoding])
    else:
        raise AssertionError(f"{what} declares the encoding kind {kind!r}; known: {list(ENCODING_KINDS)}")


def _shape(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [getattr(v, "shape", type(v)) for v in value]
    return getattr(value, "shape", type(value))
