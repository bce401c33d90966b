"""One run: resolve components, check them, compute the identity, execute the protocol, record the outcome.

A run exists in the store from the moment its identity is known (after the dataset is opened, and any other data
the protocol declares it reads is fingerprinted, since the identity includes those fingerprints; data that cannot
be read raises before the run is recorded, like an unknown component). From then on nothing is lost: a success
stores its metrics, its phase times (:mod:`harness.timing`, split ``time``) and the training curves under its
folder (:mod:`harness.curves`) in one transaction, an exception is stored as ``failed`` with its reason, and Ctrl-C or
SIGTERM as ``interrupted``; a rerun of the same identity resumes from the run's last checkpoint.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import shutil
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

import harness
from harness import compat, timing
from harness.config import ROLES, check_run_config, component_config, identity_config
from harness.curves import collect_curves
from harness.contracts import Dataset
from harness.environment import environment
from harness.registry import Registry
from harness.specs import ComponentSpec, Kind, load_attribute
from harness.store import Metric, RunRecord, Store

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"  # a finished run's metrics in its folder, as recorded in the store
ERROR_FILE = "error.log"  # a failed run's traceback in its folder (the store records the one-line reason)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, as an exception carrying the signal, so the run is recorded as interrupted and the
    command exits with the shell's code for it (128 + the signal's number: 130, 143)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signum = signum
        super().__init__(f"signal {signal.Signals(signum).name}")

    def __reduce__(self) -> tuple[type, tuple[int]]:  # crosses from a bench worker to the bench
        return Interrupted, (self.signum,)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class RunFailed(RuntimeError):
    """The protocol raised; the run is recorded as failed with this message."""


@dataclass
class RunSetup:
    """What a run is made of before it is claimed: its config, components (built on demand) and dataset; what a
    protocol's ``data_fingerprints`` hook gets (the run folder is named after the identity it helps compute)."""

    cfg: DictConfig
    specs: dict[str, ComponentSpec]
    dataset: Dataset
    registry: Registry

    def config(self, role: str) -> Any:
        return component_config(self.cfg, self.specs[role])

    def build(self, role: str, *args: Any, **kwargs: Any) -> Any:
        """Build the component chosen for ``role`` from its spec and config."""
        spec = self.specs[role]
        return spec.build(self.config(role), *args, **kwargs)

    @property
    def input_key(self) -> str:
        """The sample key the chosen encoder reads (its input modality)."""
        return self.specs["encoder"].capabilities.consumes

    def encoder_and_decoder(self) -> tuple[Any, Any]:
        """The chosen encoder, and the chosen decoder sized from its encoding and the dataset."""
        encoder = self.build("encoder", self.dataset.info)
        return encoder, self.build("decoder", encoder.encoding, self.dataset.info)

    def named_spec_and_config(self, kind: Kind, name: str) -> tuple[ComponentSpec, Any]:
        """A component the protocol picks itself (e.g. the heads of a multi-task model): its spec, and its
        config with its defaults and this run's profile overrides."""
        spec = self.registry.get(kind, name)
        return spec, spec.config(**spec.profiles.get(self.cfg.profile.name, {}))

    def build_named(self, kind: Kind, name: str, *args: Any) -> Any:
        spec, config = self.named_spec_and_config(kind, name)
        return spec.build(config, *args)


@dataclass
class RunContext(RunSetup):
    """What a protocol gets: the run's setup, the device, a run folder and the seed."""

    device: Any  # torch.device
    run_dir: Path
    seed: int


@dataclass
class RunOutcome:
    status: str  # succeeded | skipped | failed | interrupted
    identity: str
    run_id: int | None = None
    metrics: list[Metric] = field(default_factory=list)  # the protocol's (stored with the run's phase times)
    error: str = ""


def resolve_specs(cfg: DictConfig, registry: Registry) -> dict[str, ComponentSpec]:
    """role -> spec for every chosen component (unknown names raise with near matches)."""
    specs = {}
    for kind in ROLES + (Kind.COMPRESSOR,):
        node = cfg.get(kind.value)
        if node is not None:
            specs[kind.value] = registry.get(kind, node.name)
    return specs


def method_label(specs: dict[str, ComponentSpec], configs: dict[str, Any]) -> str:
    """How a combination reads in a leaderboard row: its components in model order, each followed by what
    its config says of itself where it can (``describe()``, e.g. a compressor's per-layer bits), then the
    protocol's own description (e.g. a multi-task protocol's task set). Component fields the protocol sweeps
    (its config's ``swept_fields()``, e.g. the quantisation protocol's bits) read "swept", not their default."""
    swept = getattr(configs.get("protocol"), "swept_fields", dict)()

    def described(role: str) -> str:
        config = configs.get(role)
        if swept.get(role) and dataclasses.is_dataclass(config):  # (a field it lacks is the protocol's error)
            fields = {f.name for f in dataclasses.fields(config)}
            config = dataclasses.replace(config, **{name: "swept" for name in swept[role] if name in fields})
        describe = getattr(config, "describe", None)
        return f"{specs[role].name} ({describe()})" if describe else specs[role].name

    label = " + ".join(described(role) for role in ("encoder", "decoder", "compressor") if role in specs)
    describe = getattr(configs.get("protocol"), "describe", None)
    return f"{label} [{describe()}]" if describe else label


def data_fingerprints(setup: RunSetup) -> dict[str, str]:
    """{label: fingerprint} of the data the protocol reads besides the run's dataset (its ``data_fingerprints``
    hook; none without one)."""
    hook = setup.specs["protocol"].capabilities.data_fingerprints
    return dict(load_attribute(hook)(setup)) if hook else {}


def run_identity(cfg: DictConfig, specs: dict[str, ComponentSpec], fingerprint: str, seed: bool = True,
                 data: Mapping[str, str] | None = None) -> str:
    """The hash that decides skip/rerun; ``seed=False`` gives the variant, shared by the seeds of one setting.
    ``data``: the fingerprints of what the protocol reads besides the dataset (only a protocol that reads some has
    the key, so declaring the hook leaves every other identity as it was)."""
    config = identity_config(cfg)
    if not seed:
        config.pop("seed")
    payload = {
        "config": config,
        "components": {role: [spec.name, spec.version] for role, spec in sorted(specs.items())},
        "dataset_fingerprint": fingerprint,
        "harness": harness.__version__,
    }
    if data:
        payload["data_fingerprints"] = dict(data)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def _handling(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM while inside, the previous handlers restored on leaving (outside the main
    thread signals are left alone)."""
    try:
        previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


def interrupts_raised() -> contextlib.AbstractContextManager[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` while inside."""
    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    return _handling(handler)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while a run's end is recorded, so no signal cuts the record; one that arrives
    meanwhile is raised again on leaving, for the handlers outside to act on."""
    held: list[int] = []
    with _handling(lambda signum, frame: held.append(signum)):
        yield
    if held:
        signal.raise_signal(held[0])


def execute(cfg: DictConfig, registry: Registry) -> RunOutcome:
    """Run one configured combination and record it; raises RunFailed / KeyboardInterrupt after recording."""
    from harness.training import resolve_device, seed_everything

    specs = resolve_specs(cfg, registry)
    check_run_config(cfg, specs)  # before anything is built or recorded
    protocol_spec = specs.pop("protocol")
    unused = [role for role in ("encoder", "decoder") if role in specs and role not in protocol_spec.capabilities.roles]
    if unused:  # e.g. the default decoder under a protocol that picks its own heads: not part of this run
        cfg = cfg.copy()
        with open_dict(cfg):
            for role in unused:
                cfg[role] = None
                del specs[role]
    compat.check(protocol_spec, specs)
    specs["protocol"] = protocol_spec
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    timing.restart()
    run_started = time.perf_counter()
    with timing.phase("dataset"):
        dataset = specs["dataset"].build(component_config(cfg, specs["dataset"]), cache_dir=Path(cfg.paths.cache))
    setup = RunSetup(cfg=cfg, specs=specs, dataset=dataset, registry=registry)
    data = data_fingerprints(setup)

    identity = run_identity(cfg, specs, dataset.info.fingerprint, data=data)
    run_dir = Path(cfg.paths.runs) / identity[:16]
    components: dict[str, dict[str, Any]] = {role: {"name": spec.name, "version": spec.version}
                                             for role, spec in sorted(specs.items())}
    if data:  # recorded with the protocol that reads it
        components["protocol"]["data_fingerprints"] = data
    record = RunRecord(
        identity=identity, variant=run_identity(cfg, specs, dataset.info.fingerprint, seed=False, data=data),
        protocol=protocol_spec.name, dataset=dataset.info.name,
        method=method_label(specs, {role: component_config(cfg, spec) for role, spec in specs.items()}),
        components=components,
        profile=cfg.profile.name, dataset_fingerprint=dataset.info.fingerprint,
        config=OmegaConf.to_container(cfg, resolve=True), seed=cfg.seed, environment=environment(str(device)),
        run_dir=str(run_dir),
    )
    store = Store(cfg.store.url)
    run_id = store.start(record, force=cfg.force)
    if run_id is None:
        log.info("skipped %s (%s): identity %s already succeeded; force=true reruns it",
                 record.method, record.protocol, identity[:12])
        return RunOutcome("skipped", identity)

    started = time.perf_counter()
    with interrupts_raised():  # from the moment the run is claimed, it ends recorded one way or another
        try:
            if cfg.force:  # a forced rerun recomputes; only an unfinished run resumes from its checkpoints
                shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / ERROR_FILE).unlink(missing_ok=True)  # an earlier attempt's traceback
            (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
            log.info("run %d: %s on %s, protocol %s, seed %d -> %s", run_id, record.method, record.dataset,
                     record.protocol, cfg.seed, run_dir)
            protocol = protocol_spec.build(component_config(cfg, protocol_spec))
            context = RunContext(cfg=cfg, specs=specs, dataset=dataset, registry=registry, device=device,
                                 run_dir=run_dir, seed=cfg.seed)
            metrics = protocol.run(context)
        except KeyboardInterrupt as exc:
            with _signals_held():
                store.fail(run_id, f"interrupted: {exc or 'signal SIGINT (KeyboardInterrupt)'}", interrupted=True)
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            _write_beside(run_dir / ERROR_FILE, traceback.format_exc())
            store.fail(run_id, error)
            raise RunFailed(f"run {run_id} ({record.method} on {record.dataset}, protocol {record.protocol}) "
                            f"failed: {error}") from exc
    finished = time.perf_counter()
    times = timing.run_times(protocol_s=finished - started, total_s=finished - run_started)
    recorded = metrics + [Metric(timing.TIME_SPLIT, name, seconds) for name, seconds in times.items()]
    with _signals_held():  # a finished run is recorded whole; a signal now takes effect once it is
        # written first, so a store that fails now loses nothing: the figures stay in the run folder
        _write_beside(run_dir / METRICS_FILE, json.dumps([dataclasses.asdict(m) for m in recorded], indent=1) + "\n")
        try:
            store.succeed(run_id, recorded, wall_time_s=finished - started, curves=collect_curves(run_dir))
        except Exception as exc:  # StoreError, or the database's own (a full disk, a lost server)
            with contextlib.suppress(Exception):
                store.fail(run_id, f"its result could not be recorded ({exc}); see {run_dir / METRICS_FILE}")
            raise RunFailed(f"run {run_id} finished but the store refused its result: {exc}; the metrics are in "
                            f"{run_dir / METRICS_FILE}") from exc
    return RunOutcome("succeeded", identity, run_id, metrics)


def _write_beside(path: Path, text: str) -> None:
    """A copy in the run folder of what the store records; a disk that refuses it (full) must not keep the store
    from recording the run, so the failure is only logged."""
    try:
        path.write_text(text)
    except OSError as exc:
        log.warning("could not write %s: %s", path, exc)
