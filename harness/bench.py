"""The main job: every registered protocol on every compatible combination over the synthetic datasets.

Combinations come from capabilities alone (nothing is built to find them). Each run goes through
``runner.execute`` so identities, skipping and failure recording are the same as for ``harness run``;
a failing combination is recorded and the bench moves on. The leaderboards are regenerated at the end.
"""
from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from harness.compat import mismatches
from harness.config import compose_config, locations, register_configs
from harness.registry import Registry
from harness.runner import Interrupted, RunFailed, RunOutcome, execute, interrupts_raised
from harness.specs import BenchVariant, ComponentSpec, Kind
from harness.store import Store, StoreError
from harness.timing import PHASES, TIME_SPLIT

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


BenchResult = tuple[Combination, RunOutcome | None, str]  # a run's combination, its outcome (None: failed), error


def combinations(registry: Registry, datasets: Sequence[ComponentSpec] | None = None) -> Iterator[Combination]:
    """Every (protocol, dataset, encoder, decoder) the capabilities accept, in sorted order, once per bench
    variant of the protocol that admits it (input modality, dataset targets and names), restricted to the
    datasets each encoder is benchmarked on, with the overrides its head needs."""
    if datasets is None:
        datasets = [d for d in registry.specs(Kind.DATASET) if d.capabilities.synthetic]
    for protocol in reuse_order(registry.specs(Kind.PROTOCOL)):
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


def reuse_order(protocols: Sequence[ComponentSpec]) -> list[ComponentSpec]:
    """The protocols by name, except that one comes after every registered protocol whose trainings it reuses
    (``ProtocolCaps.reuses``); a cycle is an error naming the protocols in it."""
    waiting = sorted(protocols, key=lambda spec: spec.name)
    names = {spec.name for spec in waiting}
    ordered: list[ComponentSpec] = []
    while waiting:
        done = {spec.name for spec in ordered}
        ready = [spec for spec in waiting if set(spec.capabilities.reuses) & names <= done]
        if not ready:
            raise ValueError(f"protocols {[spec.name for spec in waiting]} reuse each other's trainings in a cycle")
        ordered.append(ready[0])
        waiting.remove(ready[0])
    return ordered


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


class BenchStopped(Exception):
    """SIGINT or SIGTERM stopped the bench: no run was started after it, the runs in flight were recorded as
    interrupted, and ``results`` holds every run's outcome so far (``not started`` for the rest)."""

    def __init__(self, results: list[BenchResult], signum: int) -> None:
        super().__init__(f"bench stopped by {signal.Signals(signum).name}")
        self.results, self.signum = results, signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


NOT_STARTED = "not started"
INTERRUPTED = "interrupted"


def run_bench(registry: Registry, profile: str = "quick", seeds: int = 1, force: bool = False,
              protocols: Sequence[str] = (), extra: Sequence[str] = (),
              jobs: int = 1) -> list[BenchResult]:
    """Run the combinations; returns (combination, outcome, error) per run, in order, errors recorded, never
    raised. ``jobs`` > 1 runs that many at once in worker processes (with the installed plugins), the torch
    threads shared out among them: small models keep one core busy with Python and data loading rather than
    with maths, so two single-threaded runs finish sooner than two two-threaded ones in turn. Runs that need
    the same dataset or trained weights wait for whichever builds them first (both caches are locked).

    SIGINT or SIGTERM stops it (:class:`BenchStopped`): nothing more starts, the runs in flight are interrupted
    and recorded as such (a rerun resumes them); a second signal kills the workers. A worker that dies takes the
    runs in flight with it (the pool ends every worker; their rows are marked interrupted, a rerun resumes them)
    and the bench goes on with fresh workers."""
    register_configs(registry)
    todo = [(combination, seed) for combination in combinations(registry)
            if not protocols or combination.protocol in protocols for seed in range(seeds)]
    log.info("bench: %d runs (%d seed(s) each), profile %s, %d at a time", len(todo), seeds, profile, jobs)
    overrides = [combination.overrides() + [f"profile={profile}", f"seed={seed}", f"force={force}", *extra]
                 for combination, seed in todo]
    outcomes: list[tuple[RunOutcome | None, str]] = [(RunOutcome(NOT_STARTED, ""), "")] * len(todo)
    try:
        if jobs <= 1:
            _run_in_turn(registry, overrides, outcomes)
        else:
            _run_in_workers(overrides, outcomes, jobs, locations(registry, [f"profile={profile}", *extra]).store_url)
    except BenchStopped as stopped:
        stopped.results = _results(todo, outcomes)
        raise
    return _results(todo, outcomes)


def _results(todo: Sequence[tuple[Combination, int]],
             outcomes: Sequence[tuple[RunOutcome | None, str]]) -> list[BenchResult]:
    results = []
    for (combination, seed), (outcome, error) in zip(todo, outcomes):
        results.append((combination, outcome, error))
        if outcome is not None:
            log.info("%s seed=%d: %s", combination, seed, outcome.status)
    return results


def _run_in_turn(registry: Registry, overrides: Sequence[list[str]],
                 outcomes: list[tuple[RunOutcome | None, str]]) -> None:
    """One run after another in this process; a signal between or during runs stops the bench."""
    index = 0
    try:
        with interrupts_raised():
            for index, chosen in enumerate(overrides):
                outcomes[index] = _run_one(registry, chosen)
    except Interrupted as exc:
        if outcomes[index][0] is not None and outcomes[index][0].status == NOT_STARTED:  # stopped inside that run
            outcomes[index] = (RunOutcome(INTERRUPTED, ""), str(exc))
        raise BenchStopped([], exc.signum) from exc


def _run_in_workers(overrides: Sequence[list[str]], outcomes: list[tuple[RunOutcome | None, str]], jobs: int,
                    store_url: str) -> None:
    """At most ``jobs`` runs at a time in worker processes, each submitted only when a worker is free, so a stop
    leaves nothing queued. On SIGINT/SIGTERM the workers get the same signal (their runs record the interruption)
    and are waited for; a dead worker's runs are failed and a fresh pool takes the rest."""
    import torch

    threads = max(1, torch.get_num_threads() // jobs)
    context = multiprocessing.get_context("spawn")  # fork could deadlock on torch's threads
    stop: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        """The first signal is passed on to the workers, whose runs record it; a second one kills them (their rows
        are then marked interrupted as stale)."""
        again = bool(stop)
        stop.append(signum)
        log.warning("%s: %s", signal.Signals(signum).name, "killing the workers" if again else
                    "starting no more runs; interrupting the runs in flight (again to kill them)")
        for child in multiprocessing.active_children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL if again else signum)

    pending = deque(range(len(overrides)))
    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        while pending and not stop:
            pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(threads,))
            running: dict[Future, int] = {}
            workers: dict[int, multiprocessing.process.BaseProcess] = {}
            broken = False
            while not broken and ((pending and not stop) or running):
                while pending and not stop and len(running) < jobs and not broken:
                    index = pending.popleft()
                    try:
                        running[pool.submit(_run_in_worker, overrides[index])] = index
                    except BrokenProcessPool:  # a worker died since the last wait: this run goes to the next pool
                        pending.appendleft(index)
                        broken = True
                done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    outcome = outcomes[running.pop(future)] = _worker_outcome(future)
                    broken = broken or outcome[1] == WORKER_DIED
                workers.update((child.pid, child) for child in multiprocessing.active_children())
                # the pool notices a dead worker itself, but not always (a worker killed at the wrong moment can leave
                # its queues locked): a worker seen alive and now gone breaks the pool here too
                broken = broken or (not stop and any(not worker.is_alive() for worker in workers.values()))
            if broken:  # end every worker for certain; the runs in flight share the dead one's fate
                for worker in workers.values():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.pid, signal.SIGKILL)
                for worker in workers.values():
                    worker.join(10)  # reaped, so their runs' owners are provably gone
                for future, index in running.items():
                    outcomes[index] = (None, WORKER_DIED)
                pool.shutdown(wait=False, cancel_futures=True)
            else:
                pool.shutdown(wait=True)
            if broken or stop:  # a run whose worker died before it could record its end
                _mark_stale(store_url)
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
    if stop:
        raise BenchStopped([], stop[0])


def _mark_stale(store_url: str) -> None:
    """Mark the runs of dead workers interrupted; a store that cannot be written only gets a log line (its rows
    are marked by the next run that opens it)."""
    try:
        Store(store_url).mark_stale()
    except StoreError as exc:
        log.error("could not mark the runs of dead workers: %s", exc)


WORKER_DIED = "its worker process died (the run is marked interrupted; a rerun resumes it)"


def _worker_outcome(future: Future) -> tuple[RunOutcome | None, str]:
    try:
        return future.result()
    except BrokenProcessPool:
        return None, WORKER_DIED
    except Interrupted as exc:
        return RunOutcome(INTERRUPTED, ""), str(exc)


def _run_one(registry: Registry, overrides: list[str]) -> tuple[RunOutcome | None, str]:
    """One run: its outcome, or None and why it failed or could not start (a broken combination must not stop
    the others)."""
    try:
        return execute(compose_config(overrides), registry), ""
    except RunFailed as exc:
        log.error("%s", exc)
        return None, str(exc)
    except Exception as exc:
        log.error("%s could not start: %s: %s", " ".join(overrides), type(exc).__name__, exc)
        return None, f"{type(exc).__name__}: {exc}"


_worker_registry: Registry | None = None


def _start_worker(threads: int) -> None:
    """A bench worker process: its logging, its share of the torch threads and its registry. Between runs it
    ignores Ctrl-C, which its parent handles (stopping the bench and passing the signal on to the runs in flight);
    it ends when the parent does, however that dies."""
    global _worker_registry
    import torch

    from harness.progress import setup_logging
    from harness.registry import default_registry

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with_parent, daemon=True).start()
    setup_logging()
    torch.set_num_threads(threads)
    _worker_registry = default_registry()
    register_configs(_worker_registry)


def _end_with_parent(grace_s: float = 60.0) -> None:
    """Wait for the parent process to end; then SIGTERM this worker (a run in progress records its interruption)
    and exit as soon as no run is in progress (after ``grace_s`` at the latest)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    multiprocessing.connection.wait([parent.sentinel])
    os.kill(os.getpid(), signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _run_in_progress.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    os._exit(128 + signal.SIGTERM)


_run_in_progress = threading.Event()  # set while a bench worker runs a combination


def _run_in_worker(overrides: list[str]) -> tuple[RunOutcome | None, str]:
    assert _worker_registry is not None, "bench worker used before _start_worker"
    _run_in_progress.set()
    try:
        with interrupts_raised():  # from the first step (composing, building the dataset), not only in training
            return _run_one(_worker_registry, overrides)
    except Interrupted as exc:
        # a signal that interrupts a run ends its worker too, shortly after the interruption is reported: the pool
        # SIGTERMs every worker when one dies and then waits for them to end, which a worker that only records
        # its run's interruption and asks for the next one never would
        ending = threading.Timer(WORKER_EXIT_DELAY_S, os._exit, (exc.exit_code,))
        ending.daemon = True
        ending.start()
        raise
    finally:
        _run_in_progress.clear()


WORKER_EXIT_DELAY_S = 2.0


TIME_COLUMNS = ("total_s", *(f"{name}_s" for name in PHASES))


def bench_timing(results: Sequence[BenchResult], store: Store) -> list[dict[str, Any]]:
    """Where the bench's time went: per run, its protocol, dataset, method, seed, status and seconds per phase
    (the times the store recorded for its identity, so a skipped run shows those of the run it skipped; None
    where there are none, e.g. a failed run), slowest first."""
    runs = store.runs(status="succeeded").set_index("identity")
    metrics = store.metrics()
    metrics = metrics[metrics["split"] == TIME_SPLIT]
    times = {run_id: dict(zip(group["name"], group["value"])) for run_id, group in metrics.groupby("run_id")}
    rows = []
    for combination, outcome, _ in results:
        # a run that never succeeded is described by the choices that made it
        row: dict[str, Any] = {"protocol": combination.protocol, "dataset": combination.dataset,
                               "method": " ".join(combination.overrides()[2:]), "seed": None,
                               "status": outcome.status if outcome else "failed"}
        recorded: dict[str, float] = {}
        if outcome is not None and outcome.identity in runs.index:
            run = runs.loc[outcome.identity]
            row.update(method=run["method"], seed=int(run["seed"]))
            recorded = times.get(run["id"], {})
        rows.append(row | {column: recorded.get(column) for column in TIME_COLUMNS})
    return sorted(rows, key=lambda row: (row["total_s"] is None, -(row["total_s"] or 0.0), row["protocol"],
                                         row["dataset"], row["method"], -1 if row["seed"] is None else row["seed"]))


def report_timing(results: Sequence[BenchResult], store_url: str, path: Path) -> list[dict[str, Any]]:
    """Log the bench's :func:`bench_timing` table and write it to ``path`` as JSON; returns its rows."""
    from tabulate import tabulate

    rows = bench_timing(results, Store(store_url, read_only=True))
    table = [[_cell(column, value) for column, value in row.items()] for row in rows]
    log.info("where the bench's time went (seconds):\n%s", tabulate(table, headers=list(rows[0]) if rows else []))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return rows


def _cell(column: str, value: Any) -> Any:
    if value is None:
        return ""
    return f"{value:.1f}" if column in TIME_COLUMNS else value
