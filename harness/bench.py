"""The main job: every registered protocol on every compatible combination over the synthetic datasets.

Combinations come from capabilities alone (nothing is built to find them). Each run goes through
``runner.execute`` so identities, skipping and failure recording are the same as for ``harness run``;
a failing combination is recorded and the bench moves on. The leaderboards are regenerated at the end.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra

from harness.compat import mismatches
from harness.config import ROOT_CONFIG, register_configs
from harness.registry import Registry
from harness.runner import RunFailed, RunOutcome, execute
from harness.specs import BenchVariant, ComponentSpec, Kind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Combination:
    protocol: str
    dataset: str
    encoder: str
    decoder: str | None
    variant: tuple[str, ...] = ()  # the protocol's bench variant overrides

    def overrides(self) -> list[str]:
        chosen = [f"protocol={self.protocol}", f"dataset={self.dataset}", f"encoder={self.encoder}"]
        # without a decoder role the default decoder stays selected; the runner leaves it out of the run
        return chosen + ([f"decoder={self.decoder}"] if self.decoder else []) + list(self.variant)

    def __str__(self) -> str:
        return " ".join(self.overrides())


def combinations(registry: Registry, datasets: Sequence[ComponentSpec] | None = None) -> Iterator[Combination]:
    """Every (protocol, dataset, encoder, decoder) the capabilities accept, in sorted order, once per bench
    variant of the protocol that admits it (input modality, dataset targets and names), restricted to the
    datasets each encoder is benchmarked on, with the overrides its head needs."""
    if datasets is None:
        datasets = [d for d in registry.specs(Kind.DATASET) if d.capabilities.synthetic]
    for protocol in registry.specs(Kind.PROTOCOL):
        decoders: list[ComponentSpec | None] = list(registry.specs(Kind.DECODER))
        if "decoder" not in protocol.capabilities.roles:
            decoders = [None]
        for dataset in datasets:
            for encoder in registry.specs(Kind.ENCODER):
                wanted = encoder.capabilities.bench_datasets
                if wanted and dataset.name not in wanted:
                    continue
                for decoder in decoders:
                    for variant in protocol.capabilities.bench:
                        parts = {"dataset": dataset, "encoder": encoder, "decoder": decoder,
                                 "compressor": _chosen(registry, Kind.COMPRESSOR, variant.overrides)}
                        if _admits(variant, dataset, encoder, decoder) and not mismatches(protocol, parts):
                            head = encoder.capabilities.bench_heads.get(decoder.name, ()) if decoder else ()
                            yield Combination(protocol.name, dataset.name, encoder.name,
                                              decoder.name if decoder else None, tuple(head) + variant.overrides)


def _admits(variant: BenchVariant, dataset: ComponentSpec, encoder: ComponentSpec,
            decoder: ComponentSpec | None) -> bool:
    return ((not variant.inputs or encoder.capabilities.consumes in variant.inputs)
            and set(variant.targets) <= set(dataset.capabilities.targets)
            and (not variant.datasets or dataset.name in variant.datasets)
            and (not variant.tasks or decoder is None or decoder.capabilities.task in variant.tasks)
            and (not variant.encoders or encoder.name in variant.encoders))


def _chosen(registry: Registry, kind: Kind, overrides: Sequence[str]) -> ComponentSpec | None:
    """The component a variant selects with ``<kind>=<name>``, if any."""
    names = [o.split("=", 1)[1] for o in overrides if o.startswith(f"{kind.value}=")]
    return registry.get(kind, names[-1]) if names else None


def compose_config(overrides: Sequence[str]):
    """Compose the root config outside ``hydra.main`` (the bench loops in one process)."""
    GlobalHydra.instance().clear()
    with initialize(version_base="1.3", config_path=None):
        return compose(config_name=ROOT_CONFIG, overrides=list(overrides))


def run_bench(registry: Registry, profile: str = "quick", seeds: int = 1, force: bool = False,
              protocols: Sequence[str] = (), extra: Sequence[str] = ()) -> list[tuple[Combination, RunOutcome | None, str]]:
    """Run the combinations; returns (combination, outcome, error) per run, errors recorded, never raised."""
    register_configs(registry)
    results = []
    todo = [c for c in combinations(registry) if not protocols or c.protocol in protocols]
    log.info("bench: %d combinations x %d seed(s), profile %s", len(todo), seeds, profile)
    for combination in todo:
        for seed in range(seeds):
            overrides = combination.overrides() + [f"profile={profile}", f"seed={seed}", f"force={force}", *extra]
            try:
                outcome = execute(compose_config(overrides), registry)
                results.append((combination, outcome, ""))
                log.info("%s seed=%d: %s", combination, seed, outcome.status)
            except RunFailed as exc:
                results.append((combination, None, str(exc)))
                log.error("%s", exc)
            except Exception as exc:  # a broken combination must not stop the others
                results.append((combination, None, f"{type(exc).__name__}: {exc}"))
                log.error("%s seed=%d could not start: %s: %s", combination, seed, type(exc).__name__, exc)
    return results


def regenerate_leaderboards(registry: Registry, store_url: str, out_dir: Path) -> list[Path]:
    """Render ``out_dir/<protocol>.md`` for every registered protocol from the store."""
    from harness.leaderboard import ProtocolBoard, render_leaderboards
    from harness.reference import reference_dir
    from harness.store import Store

    boards = {p.name: ProtocolBoard(reference_tables=p.capabilities.reference_tables,
                                    reference_metrics=dict(p.capabilities.reference_metrics),
                                    primary_metric=p.capabilities.primary_metric,
                                    breakdown=p.capabilities.breakdown, pareto=p.capabilities.pareto,
                                    figures=p.capabilities.figures)
              for p in registry.specs(Kind.PROTOCOL)}
    dataset_references = {d.name: d.capabilities.reference_datasets for d in registry.specs(Kind.DATASET)}
    return render_leaderboards(Store(store_url), Path(out_dir), boards, dataset_references, reference_dir())
