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

from harness.store import Metric, RunInProgress, RunRecord, Store, StoreDamaged, StoreError, runs_table

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


def test_opening_for_reading_never_creates_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "results.sqlite"
    with pytest.raises(StoreError, match=f"no results store at {missing}"):
        Store(f"sqlite:///{missing}", read_only=True)
    assert not missing.exists() and not missing.parent.exists()


def test_read_only_store_is_read_without_a_byte_changing(store: Store, tmp_path: Path) -> None:
    run_id = store.start(record())
    store.succeed(run_id, [Metric("test", "iou", 0.5, True)], wall_time_s=1.0)
    store.close()
    path = tmp_path / "nested" / "results.sqlite"
    before = path.read_bytes()
    reader = Store(f"sqlite:///{path}", read_only=True)
    assert reader.metrics()["value"].tolist() == [0.5]
    with pytest.raises(StoreError):
        reader.start(record("id-b"))  # a read-only store refuses writes
    reader.close()
    assert path.read_bytes() == before


def test_store_of_an_older_harness_is_read_and_upgraded_on_write(tmp_path: Path) -> None:
    """A store made before ``process_start`` existed: read as it is, given the column when opened for writing."""
    import sqlite3

    path = tmp_path / "old.sqlite"
    store = Store(f"sqlite:///{path}")
    store.succeed(store.start(record()), [], wall_time_s=1.0)
    store.close()
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE runs DROP COLUMN process_start")
    assert Store(f"sqlite:///{path}", read_only=True).runs()["status"].tolist() == ["succeeded"]
    upgraded = Store(f"sqlite:///{path}")
    assert upgraded.start(record("id-b")) is not None and "process_start" in upgraded.runs().columns


def test_running_row_of_a_reused_pid_is_stale(store: Store) -> None:
    """The owner's pid now belongs to another (live) process that started later: the run is taken over."""
    from sqlalchemy import update

    from harness.store import process_start

    run_id = insert_running(store, "id-a", os.getpid(), store.host)
    with store._engine.begin() as connection:
        connection.execute(update(runs_table).where(runs_table.c.id == run_id)
                           .values(process_start=process_start(os.getpid()) - 1))
    assert store.start(record()) is not None
    assert store.get_run(run_id)["status"] == "interrupted"


def _page_of(path: Path, marker: bytes) -> int:
    """The 1-based page of the SQLite file holding ``marker``."""
    import sqlite3

    with sqlite3.connect(path) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    return path.read_bytes().index(marker) // page_size + 1


def _damage_page(path: Path, page: int) -> None:
    """Overwrite the b-tree header of one page (type, free block, cell count) with garbage."""
    import sqlite3

    with sqlite3.connect(path) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    start = (page - 1) * page_size + (100 if page == 1 else 0)  # page 1 starts with the file header
    data[start:start + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))


def _filled_store(path: Path, runs: int) -> None:
    store = Store(f"sqlite:///{path}")
    for index in range(runs):
        run_id = store.start(record(f"id-{index:04d}", method=f"method-{index:04d}"))
        store.succeed(run_id, [Metric("test", "iou", index / runs, True)], wall_time_s=1.0)
    store.close()


@pytest.mark.parametrize("part", ["table", "index"])
def test_damaged_store_is_refused_for_writing_and_reading(tmp_path: Path, part: str) -> None:
    import sqlite3

    path = tmp_path / "results.sqlite"
    _filled_store(path, 3)
    with sqlite3.connect(path) as connection:
        name = "runs" if part == "table" else "ix_metrics_run_id"
        page = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
    _damage_page(path, page)
    for read_only in (False, True):
        with pytest.raises(StoreDamaged, match=rf"{path}.*damaged.*harness store recover"):
            Store(f"sqlite:///{path}", read_only=read_only)


def test_recover_copies_every_readable_row_into_a_new_store(tmp_path: Path) -> None:
    from harness.store import recover

    path = tmp_path / "results.sqlite"
    _filled_store(path, 200)
    _damage_page(path, _page_of(path, b"method-0100"))
    with pytest.raises(StoreDamaged):
        Store(f"sqlite:///{path}")
    copied = recover(f"sqlite:///{path}", f"sqlite:///{tmp_path}/recovered.sqlite")
    runs = Store(f"sqlite:///{tmp_path}/recovered.sqlite").runs()
    lost = sorted(set(range(1, 201)) - set(runs["id"]))
    assert "method-0100" not in set(runs["method"]) and lost == list(range(lost[0], lost[0] + len(lost)))
    assert len(lost) < 50  # the rows of one leaf page, and only those, are lost
    assert copied["runs"] == (len(runs), 0)
    metrics = Store(f"sqlite:///{tmp_path}/recovered.sqlite").metrics()
    assert set(metrics["run_id"]) == set(runs["id"])  # the lost runs' metrics are left out, the others kept
    assert copied["metrics"] == (len(runs), 200 - len(runs))


def test_killed_but_unreaped_owner_is_gone() -> None:
    """A zombie still answers ``kill(pid, 0)``; its run is stale all the same."""
    import signal
    import time

    from harness.store import owner_gone, process_start

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = process_start(child.pid)
    assert not owner_gone(child.pid, started)
    child.send_signal(signal.SIGKILL)
    deadline = time.time() + 10
    while not owner_gone(child.pid, started) and time.time() < deadline:
        time.sleep(0.05)
    assert owner_gone(child.pid, started)  # before it is reaped
    child.wait()
