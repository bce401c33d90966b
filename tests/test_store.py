"""The results store: skip/force, failure recording, stale runs, atomic results, and several processes at once."""
from __future__ import annotations

import math
import multiprocessing
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import insert

from harness.store import Metric, RunInProgress, RunRecord, Store, StoreError, runs_table

WORKERS = 4


def record(identity: str = "id-a", seed: int = 0, method: str = "pointnet+occupancy") -> RunRecord:
    return RunRecord(identity=identity, variant=identity, protocol="reconstruction", dataset="synthetic_shapes", method=method,
                     components={"encoder": {"name": "pointnet", "version": "1"}}, profile="smoke",
                     dataset_fingerprint="fp", config={"seed": seed}, seed=seed,
                     environment={"torch": "2.3", "device": "cpu"}, run_dir="runs/x")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path}/nested/results.sqlite")


def dead_pid() -> int:
    """A pid that certainly belonged to a process that has exited (and been reaped)."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    return int(finished.stdout)


def test_open_creates_directories_and_uses_wal(store: Store, tmp_path: Path) -> None:
    assert (tmp_path / "nested" / "results.sqlite").exists()
    with store._engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_bad_url_and_unreadable_file_name_the_url(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not-a-url"):
        Store("not-a-url")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="junk.sqlite"):
        Store(f"sqlite:///{junk}")


def test_skip_unless_forced_and_rerun_supersedes(store: Store) -> None:
    first = store.start(record())
    assert first is not None and not store.succeeded("id-a")
    store.succeed(first, [Metric("test", "iou", 0.5, True)], wall_time_s=1.0)
    assert store.succeeded("id-a")
    assert store.start(record()) is None

    second = store.start(record(), force=True)
    assert second is not None and second != first
    assert store.get_run(first)["status"] == "succeeded"  # still current while the rerun runs
    store.succeed(second, [Metric("test", "iou", 0.75, True)], wall_time_s=1.0)

    assert store.get_run(first)["status"] == "superseded"
    current = store.metrics()
    assert list(current["run_id"]) == [second] and list(current["value"]) == [0.75]
    assert len(store.metrics(status=None)) == 2  # history kept


def test_failed_forced_rerun_keeps_previous_result(store: Store) -> None:
    first = store.start(record())
    store.succeed(first, [Metric("test", "iou", 0.5)], wall_time_s=1.0)
    rerun = store.start(record(), force=True)
    store.fail(rerun, "boom")
    assert list(store.metrics()["run_id"]) == [first]


def test_failed_and_interrupted_record_the_error(store: Store) -> None:
    failed = store.start(record("id-f"))
    store.fail(failed, "Traceback: ValueError: bad shape")
    interrupted = store.start(record("id-i"))
    store.fail(interrupted, "KeyboardInterrupt", interrupted=True)

    assert store.get_run(failed)["status"] == "failed"
    assert "bad shape" in store.get_run(failed)["error"]
    assert store.get_run(interrupted)["status"] == "interrupted"
    assert store.get_run(interrupted)["error"] == "KeyboardInterrupt"
    assert set(store.runs(status="failed")["id"]) == {failed}
    assert store.get_run(failed)["finished_at"] is not None
    # neither counts as a result: the next start runs them again
    assert store.start(record("id-f")) is not None
    with pytest.raises(StoreError, match="not running"):
        store.fail(failed, "again")


def test_running_identity_with_live_owner_raises(store: Store) -> None:
    run_id = store.start(record())
    with pytest.raises(RunInProgress, match=rf"run {run_id}.*id-a.*pid {os.getpid()}"):
        store.start(record())
    with pytest.raises(RunInProgress):
        store.start(record(), force=True)


def insert_running(store: Store, identity: str, pid: int, host: str) -> int:
    rec = record(identity)
    with store._engine.begin() as connection:
        return connection.execute(insert(runs_table).values(
            identity=identity, variant=identity, protocol=rec.protocol, dataset=rec.dataset, method=rec.method,
            components=rec.components, profile=rec.profile, dataset_fingerprint=rec.dataset_fingerprint,
            config=rec.config, seed=rec.seed, environment=rec.environment, status="running",
            started_at=datetime.now(timezone.utc), host=host, pid=pid)).inserted_primary_key[0]


def test_stale_running_row_is_interrupted_and_replaced(store: Store) -> None:
    pid = dead_pid()
    stale = insert_running(store, "id-a", pid, store.host)
    fresh = store.start(record())
    assert fresh is not None
    row = store.get_run(stale)
    assert row["status"] == "interrupted"
    assert row["error"] == f"stale: process {pid} on {store.host} is gone"


def test_running_row_on_another_host_is_presumed_alive(store: Store) -> None:
    insert_running(store, "id-a", dead_pid(), "some-other-host")
    with pytest.raises(RunInProgress, match="some-other-host"):
        store.start(record())


def test_mark_stale_only_touches_dead_local_owners(store: Store) -> None:
    pid = dead_pid()
    dead = insert_running(store, "id-dead", pid, store.host)
    remote = insert_running(store, "id-remote", pid, "some-other-host")
    alive = store.start(record("id-alive"))
    assert store.mark_stale() == 1
    assert store.get_run(dead)["status"] == "interrupted"
    assert store.get_run(remote)["status"] == "running"
    assert store.get_run(alive)["status"] == "running"


@pytest.mark.parametrize("duplicate", [None, "chair"])
def test_succeed_is_all_or_nothing(store: Store, duplicate: str | None) -> None:
    run_id = store.start(record())
    metrics = [Metric("test", "iou", 0.5, True, class_name="table"),
               Metric("test", "iou", 0.6, True, class_name=duplicate),
               Metric("test", "iou", 0.7, True, class_name=duplicate)]
    with pytest.raises(StoreError, match="UNIQUE constraint failed"):
        store.succeed(run_id, metrics, wall_time_s=1.0)
    assert store.get_run(run_id)["status"] == "running"
    assert store.get_run(run_id)["metrics"] == []
    assert store.metrics(status=None).empty


def test_nan_metric_is_kept_as_nan(store: Store) -> None:
    run_id = store.start(record())
    store.succeed(run_id, [Metric("test", "chamfer", float("nan"), False), Metric("test", "iou", 0.5)], 1.0)
    values = dict(zip(store.metrics()["name"], store.metrics()["value"]))
    assert math.isnan(values["chamfer"]) and values["iou"] == 0.5
    assert math.isnan(store.get_run(run_id)["metrics"][0]["value"])


def test_metrics_join_run_description(store: Store) -> None:
    run_id = store.start(record(seed=3))
    store.succeed(run_id, [Metric("test", "iou", 0.5, True), Metric("test", "iou", 0.4, True, "chair"),
                           Metric("val", "chamfer", 0.01, False)], wall_time_s=2.0)
    frame = store.metrics(protocol="reconstruction")
    assert len(frame) == 3
    row = frame[(frame["split"] == "test") & frame["class_name"].isna()].iloc[0]
    assert (row["method"], row["profile"], row["seed"], row["identity"]) == ("pointnet+occupancy", "smoke", 3, "id-a")
    assert row["environment"] == {"torch": "2.3", "device": "cpu"} and bool(row["higher_is_better"])
    assert store.metrics(protocol="other").empty
    run = store.get_run(run_id)
    assert run["wall_time_s"] == 2.0 and run["config"] == {"seed": 3} and len(run["metrics"]) == 3


# -- several processes on one SQLite file (spawned, so each has its own connections) -------------

def _race_start(url: str, identity: str, barrier: Any, results: Any) -> None:
    store = Store(url)
    barrier.wait()
    try:
        results.put(("id", store.start(record(identity))))
    except RunInProgress:
        results.put(("busy", None))
    except Exception as exc:  # reported, so the test fails at once instead of waiting on the queue
        results.put(("error", repr(exc)))
    barrier.wait()  # stay alive until everyone has tried, so the winner is never taken for stale


def _write_run(url: str, identity: str, barrier: Any, results: Any) -> None:
    store = Store(url)
    barrier.wait()
    try:
        run_id = store.start(record(identity))
        store.succeed(run_id, [Metric("test", "iou", 0.5), Metric("test", "iou", 0.25, class_name="chair")], 1.0)
        results.put(("id", run_id))
    except Exception as exc:
        results.put(("error", repr(exc)))
    barrier.wait()


def _run_workers(target: Callable[..., None], url: str, identities: list[str]) -> list[tuple[str, int | None]]:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(len(identities)), context.Queue()
    workers = [context.Process(target=target, args=(url, identity, barrier, results)) for identity in identities]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return outcomes


def _open_at_once(url: str, identity: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        Store(url)
        results.put(("opened", None))
    except Exception as exc:
        results.put(("error", repr(exc)))


def test_processes_creating_one_new_store_at_once_all_open_it(tmp_path: Path) -> None:
    """(Switching a new SQLite file to WAL locks it beyond the busy timeout: without the retry, about one trial
    in seven lost a worker to "database is locked".)"""
    for trial in range(8):
        outcomes = _run_workers(_open_at_once, f"sqlite:///{tmp_path}/{trial}.sqlite", ["a", "b", "c"])
        assert outcomes == [("opened", None)] * 3


def test_concurrent_starts_of_one_identity_give_exactly_one_id(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/results.sqlite"  # opened fresh by all workers at once
    outcomes = _run_workers(_race_start, url, ["same"] * WORKERS)
    ids = [value for kind, value in outcomes if kind == "id"]
    assert len(ids) == 1 and ids[0] is not None
    assert sorted(kind for kind, _ in outcomes) == ["busy"] * (WORKERS - 1) + ["id"]
    assert list(Store(url).runs()["id"]) == ids


def test_concurrent_writers_of_distinct_runs_all_land_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/results.sqlite"
    identities = [f"id-{index}" for index in range(WORKERS)]
    outcomes = _run_workers(_write_run, url, identities)
    store = Store(url)
    runs = store.runs(status="succeeded")
    assert sorted(runs["identity"]) == identities
    assert sorted(outcomes) == sorted(("id", run_id) for run_id in runs["id"])
    assert len(store.metrics()) == 2 * WORKERS
