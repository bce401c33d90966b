"""Stopping: a bench or a run told to stop (SIGINT, SIGTERM), a bench whose parent or worker is killed.

Each test starts ``harness bench --jobs 2`` in a subprocess on the smoke classification combinations with long
trainings, waits until two runs are training, and then signals; the store says what happened to every run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.store import Store, StoreError

LONG = ["--profile", "smoke", "--protocol", "classification", "--jobs", "2", "protocol.steps=100000",
        "protocol.checkpoint_every=5", "protocol.validate_every=100000"]


def start_bench(home: Path) -> subprocess.Popen:
    env = {**os.environ, "HARNESS_HOME": str(home), "CI": "true"}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "bench", "--out", str(home / "boards"), *LONG],
                            cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def runs(home: Path):
    """The runs recorded so far; None while the bench has not yet created its store."""
    try:
        return Store(f"sqlite:///{home / 'results.sqlite'}", read_only=True).runs()
    except StoreError:
        return None


def wait_for(condition, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert process.poll() is None, process.stdout.read()
        if time.time() > deadline:
            process.kill()
            table = runs_of_process(process)
            raise AssertionError(f"timed out; runs: {table}\n{process.stdout.read()[-5000:]}")
        time.sleep(0.2)


def runs_of_process(process: subprocess.Popen):
    table = runs(Path(process.args[-len(LONG) - 1]).parent)  # the bench's --out folder is in its home
    return None if table is None else table[["id", "status", "pid", "method", "error"]].to_string()


def training(home: Path, count: int) -> bool:
    """``count`` runs are running and each has written a checkpoint."""
    table = runs(home)
    if table is None:
        return False
    running = table[table["status"] == "running"]
    return len(running) == count and all((home / d / "last.pt").exists() for d in running["run_dir"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_ctrl_c_stops_the_bench_which_records_its_runs_and_exits_130(tmp_path):
    process = start_bench(tmp_path)
    wait_for(lambda: training(tmp_path, 2), process)
    workers = list(runs(tmp_path)["pid"])
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    table = runs(tmp_path)
    assert len(table) == 2 and set(table["status"]) == {"interrupted"}  # nothing started after the signal
    assert all("SIGINT" in error for error in table["error"])
    assert "not started" in output and "bench stopped by SIGINT" in output
    assert not any(alive(pid) for pid in workers)


def test_a_dead_workers_runs_are_marked_the_bench_goes_on_and_sigterm_stops_it_with_143(tmp_path):
    process = start_bench(tmp_path)
    wait_for(lambda: training(tmp_path, 2), process)
    first = runs(tmp_path)
    os.kill(int(first["pid"].iloc[0]), signal.SIGKILL)
    # both runs in flight end (the pool ends its other worker too) and are marked; fresh workers take the next two
    wait_for(lambda: training(tmp_path, 2) and len(runs(tmp_path)) == 4, process)
    table = runs(tmp_path).set_index("id")
    assert set(table.loc[first["id"], "status"]) == {"interrupted"}
    workers = list(table["pid"])
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 143, output
    table = runs(tmp_path).set_index("id")
    assert len(table) == 4 and set(table["status"]) == {"interrupted"}  # nothing started after the signal
    assert all("SIGTERM" in error for error in table.drop(first["id"])["error"])
    assert output.count("its worker process died") == 2 and "bench stopped by SIGTERM" in output
    assert not any(alive(pid) for pid in workers)


def test_workers_end_with_their_killed_parent_and_record_their_runs(tmp_path):
    process = start_bench(tmp_path)
    wait_for(lambda: training(tmp_path, 2), process)
    workers = list(runs(tmp_path)["pid"])
    process.kill()
    process.wait(timeout=30)
    deadline = time.time() + 60
    while any(alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers)
    table = runs(tmp_path)
    assert len(table) == 2 and set(table["status"]) == {"interrupted"}
    assert all("SIGTERM" in error for error in table["error"])
