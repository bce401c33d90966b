"""End to end through the `harness` command, in subprocesses, on the smoke profile.

One results store per module: the runs build on each other (run, skip, force, fail, interrupt, resume).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.store import Store

SMOKE = ["protocol=reconstruction", "dataset=synthetic_shapes", "encoder=pointnet", "decoder=occupancy",
         "profile=smoke"]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("harness_home")


def harness(home: Path, *args: str, check: bool = True, **popen) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_HOME": str(home), "CI": "true"}
    result = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=home, env=env,
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def store(home: Path) -> Store:
    return Store(f"sqlite:///{home}/results.sqlite")


def test_run_records_metrics_and_keeps_a_reproducible_run_folder(home):
    result = harness(home, "run", *SMOKE)
    assert "succeeded" in result.stdout
    runs = store(home).runs()
    assert list(runs["status"]) == ["succeeded"]
    metrics = store(home).metrics(protocol="reconstruction")
    test = metrics[(metrics["split"] == "test") & metrics["class_name"].isna()].set_index("name")["value"]
    for name in ("iou", "chamfer_l1", "chamfer_l2", "normal_consistency", "fscore@0.01"):
        assert name in test.index
    assert 0.0 <= test["iou"] <= 1.0 and test["chamfer_l1"] > 0
    assert (metrics["class_name"].notna()).any()  # per-class rows too
    run_dir = Path(runs["run_dir"].iloc[0])
    run_dir = run_dir if run_dir.is_absolute() else home / run_dir
    assert (run_dir / "config.yaml").exists() and (run_dir / "best.pt").exists()
    recorded = {(m["split"], m["name"], m["class_name"]): m["value"]
                for m in json.loads((run_dir / "metrics.json").read_text())}
    assert recorded[("test", "iou", None)] == test["iou"]  # the run folder holds what the store does


def test_same_identity_is_skipped_and_force_reruns(home):
    assert "skipped" in harness(home, "run", *SMOKE).stdout + harness(home, "run", *SMOKE).stderr
    assert len(store(home).runs()) == 1
    assert "succeeded" in harness(home, "run", *SMOKE, "--force").stdout
    runs = store(home).runs()
    assert len(runs) == 2 and runs["identity"].nunique() == 1


def test_nan_loss_fails_the_run_with_its_reason(home):
    result = harness(home, "run", *SMOKE, "protocol.lr=inf", check=False)
    assert result.returncode == 1
    failed = store(home).runs(status="failed")
    assert len(failed) == 1 and "loss is nan" in failed["error"].iloc[0]
    assert "Traceback" not in result.stderr and "FloatingPointError" in (home / failed["run_dir"].iloc[0] /
                                                                         "error.log").read_text()


def test_unknown_name_and_typo_are_clear_errors(home):
    result = harness(home, "run", *SMOKE, "encoder=pointnt", check=False)
    assert result.returncode != 0 and "pointnt" in result.stderr and "pointnet" in result.stderr
    result = harness(home, "run", *SMOKE, "encoder.hiden=3", check=False)
    assert result.returncode != 0 and "encoder.hiden" in result.stderr


def start_run(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "HARNESS_HOME": str(home), "CI": "true"}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=home, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_checkpoint(home: Path, process: subprocess.Popen) -> None:
    """Until the one running run has written its first last.pt."""
    deadline = time.time() + 120

    def checkpointed() -> bool:
        running = store(home).runs(status="running")
        return len(running) == 1 and (home / running["run_dir"].iloc[0] / "last.pt").exists()

    while not checkpointed():
        assert process.poll() is None and time.time() < deadline, process.stdout.read()
        time.sleep(0.1)


LONG_RUN = ["protocol.steps=80", "protocol.checkpoint_every=3", "protocol.validate_every=40"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_records_interrupted_with_its_name_exits_with_its_code_and_the_rerun_resumes(home, signum):
    args = ["run", *SMOKE, f"seed={signum}", *LONG_RUN]
    process = start_run(home, *args)
    wait_for_checkpoint(home, process)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, output
    name = signal.Signals(signum).name
    assert f"interrupted by {name}" in output and "Traceback" not in output
    interrupted = store(home).runs(status="interrupted")
    assert interrupted[interrupted["seed"] == signum]["error"].tolist() == [f"interrupted: signal {name}"]
    resumed = harness(home, *args)
    assert "resumed at step" in resumed.stdout + resumed.stderr
    assert store(home).runs(status="succeeded")["seed"].tolist().count(signum) == 1


def test_killed_and_resumed_run_gives_the_uninterrupted_runs_metrics_bit_for_bit(home, tmp_path):
    """SIGKILL part-way (no chance to record anything), rerun: the stale row is taken over, training resumes from
    the last checkpoint and every test metric equals that of an uninterrupted run of the same identity."""
    args = ["run", *SMOKE, "seed=11", "protocol.steps=60", "protocol.checkpoint_every=3",
            "protocol.validate_every=20"]
    process = start_run(home, *args)
    wait_for_checkpoint(home, process)
    process.kill()
    process.wait(timeout=30)
    resumed = harness(home, *args)
    assert "resumed at step" in resumed.stdout + resumed.stderr
    straight = tmp_path / "straight"
    straight.mkdir()
    harness(straight, *args)

    def test_metrics(where: Path) -> dict:
        metrics = store(where).metrics()
        chosen = metrics[(metrics["seed"] == 11) & (metrics["split"] == "test")]
        return {(row.name, row.class_name): row.value for row in chosen.itertuples()}

    assert test_metrics(home) == test_metrics(straight) and len(test_metrics(home)) > 5
    assert set(store(home).runs()["status"][store(home).runs()["seed"] == 11]) == {"interrupted", "succeeded"}


def test_leaderboard_regeneration_is_byte_identical(home):
    out = home / "boards"
    harness(home, "leaderboard", "--out", str(out))
    first = (out / "reconstruction.md").read_bytes()
    harness(home, "leaderboard", "--out", str(out))
    assert (out / "reconstruction.md").read_bytes() == first
    text = first.decode()
    assert "pointnet + occupancy" in text and "iou ↑" in text


def test_list_and_plugins(home):
    listing = harness(home, "list").stdout
    assert "pointnet" in listing and "synthetic_shapes" in listing and "ok" in listing
    assert "builtin_encoders" in harness(home, "plugins").stdout


def test_unusable_cache_folder_is_a_clear_error(home):
    blocker = home / "not_a_folder"
    blocker.write_text("")
    result = harness(home, "run", *SMOKE, f"paths.cache={blocker}/cache", check=False)
    assert result.returncode == 1
    assert "error:" in result.stderr and str(blocker) in result.stderr and "Traceback" not in result.stderr


def test_multirun_sweep_runs_each_job_and_skips_finished_ones(home):
    out = harness(home, "run", "-m", *SMOKE, "seed=0,3").stdout
    assert "skipped: identity" in out and "succeeded: identity" in out
    assert 3 in store(home).runs(status="succeeded")["seed"].tolist()


def test_leaderboard_from_a_mistyped_store_creates_nothing_and_keeps_the_pages(home):
    out = home / "kept"
    harness(home, "leaderboard", "--out", str(out))
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    typo = home / "typo" / "results.sqlite"
    result = harness(home, "leaderboard", "--store", f"sqlite:///{typo}", "--out", str(out), check=False)
    assert result.returncode == 1 and f"no results store at {typo}" in result.stderr
    assert "Traceback" not in result.stderr and not typo.parent.exists()
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_leaderboard_keeps_pages_that_would_lose_measured_rows_unless_allowed(home):
    out = home / "shrink"
    harness(home, "leaderboard", "--out", str(out))
    page = (out / "reconstruction.md").read_text()
    rows = int(re.search(r"^Measured rows: (\d+)\.$", page, re.MULTILINE).group(1))
    assert rows >= 1 and "reconstruction_synthetic_shapes_curves.png" in page
    (out / "notes.png").write_bytes(b"a user's file")
    empty = home / "empty.sqlite"
    Store(f"sqlite:///{empty}").close()
    result = harness(home, "leaderboard", "--store", f"sqlite:///{empty}", "--out", str(out), check=False)
    assert result.returncode == 1
    assert f"{out / 'reconstruction.md'} ({rows} measured rows, 0 from the store)" in result.stderr
    assert str(empty) in result.stderr and "--allow-shrink" in result.stderr
    assert (out / "reconstruction.md").read_text() == page
    assert str(out / "classification.md") in result.stdout  # pages without measured rows are still written
    harness(home, "leaderboard", "--store", f"sqlite:///{empty}", "--out", str(out), "--allow-shrink")
    assert "No succeeded runs yet." in (out / "reconstruction.md").read_text()
    assert not (out / "reconstruction_synthetic_shapes_curves.png").exists()  # its stale figure is removed
    assert (out / "notes.png").read_bytes() == b"a user's file"  # what the pages never linked stays


def test_store_check_and_recover_commands(home, tmp_path):
    url = f"sqlite:///{home}/results.sqlite"
    checked = harness(home, "store", "check", "--store", url).stdout
    assert checked.startswith(f"{url}: ok, ") and " succeeded" in checked
    copy = tmp_path / "copy.sqlite"
    recovered = harness(home, "store", "recover", "--store", url, "--to", f"sqlite:///{copy}").stdout
    runs = len(store(home).runs())
    assert f"runs: {runs} rows copied" in recovered
    assert Store(f"sqlite:///{copy}").runs()["identity"].tolist() == store(home).runs()["identity"].tolist()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 400)
    result = harness(home, "store", "check", "--store", f"sqlite:///{junk}", check=False)
    assert result.returncode == 1 and "damaged" in result.stderr and "harness store recover" in result.stderr
    assert "Traceback" not in result.stderr


def test_store_cuda_and_home_problems_are_one_line_errors(home, tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 400)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cases = [([f"store.url=sqlite:///{junk}"], "is damaged"),
             (["store.url=postgresql://nobody@127.0.0.1:9/none"], "cannot open results store"),
             ([f"paths.home={blocker}/home"], str(blocker))]
    if not torch_cuda_available():
        cases.append((["device=cuda"], "CUDA is not available"))
    for overrides, expected in cases:
        result = harness(home, "run", *SMOKE, *overrides, check=False)
        assert result.returncode == 1 and expected in result.stderr, (overrides, result.stderr)
        assert "Traceback" not in result.stderr
        assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_disk_fails_the_run_with_that_reason_and_leaves_no_temporary_file(home):
    """The resumed run's next checkpoint is written to /dev/full (its temporary file links there): a real ENOSPC."""
    args = ["run", *SMOKE, "seed=13", *LONG_RUN]
    process = start_run(home, *args)
    wait_for_checkpoint(home, process)
    process.kill()
    process.wait(timeout=30)
    run_dir = home / store(home).runs(status="running")["run_dir"].iloc[0]
    (run_dir / "last.pt.tmp").symlink_to("/dev/full")
    result = harness(home, *args, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    failed = store(home).runs(status="failed")
    assert f"no space left on {run_dir}" in failed[failed["seed"] == 13]["error"].iloc[0]
    assert not (run_dir / "last.pt.tmp").exists()


def test_bench_paths_home_moves_its_store_timing_and_leaderboard_source(tmp_path):
    """``harness bench paths.home=X`` records into X's store, writes X/bench_timing.json and draws the leaderboards
    from that store (it used to draw them from the default home's, which the run never wrote)."""
    moved = tmp_path / "moved"
    env = {key: value for key, value in os.environ.items() if key not in ("HARNESS_HOME", "HARNESS_STORE_URL")}
    result = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--profile", "smoke", "--protocol",
                             "segmentation", "--jobs", "1", "--out", "boards", f"paths.home={moved}"],
                            cwd=tmp_path, env={**env, "CI": "true"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    runs = Store(f"sqlite:///{moved / 'results.sqlite'}", read_only=True).runs()
    measured = runs[runs["protocol"] == "segmentation"]
    assert len(measured) >= 1 and set(measured["status"]) == {"succeeded"}
    assert (moved / "bench_timing.json").exists() and not (tmp_path / ".harness").exists()
    page = (tmp_path / "boards" / "segmentation.md").read_text()
    assert f"Measured rows: {len(measured)}." in page


def test_bench_with_an_unknown_override_is_refused_before_any_run(tmp_path):
    result = harness(tmp_path, "bench", "--profile", "smoke", "--protocol", "quantisation", "paths.hom=/x",
                     check=False)
    assert result.returncode == 2 and "paths.hom" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "results.sqlite").exists()
