"""End to end through the `harness` command, in subprocesses, on the smoke profile.

One results store per module: the runs build on each other (run, skip, force, fail, interrupt, resume).
"""
from __future__ import annotations

import os
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


def test_unknown_name_and_typo_are_clear_errors(home):
    result = harness(home, "run", *SMOKE, "encoder=pointnt", check=False)
    assert result.returncode != 0 and "pointnt" in result.stderr and "pointnet" in result.stderr
    result = harness(home, "run", *SMOKE, "encoder.hiden=3", check=False)
    assert result.returncode != 0 and "encoder.hiden" in result.stderr


def test_sigterm_records_interrupted_and_the_rerun_resumes(home):
    args = ["run", *SMOKE, "seed=7", "protocol.steps=300", "protocol.checkpoint_every=3",
            "protocol.validate_every=100"]
    env = {**os.environ, "HARNESS_HOME": str(home), "CI": "true"}
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=home, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    def checkpointed() -> bool:
        running = store(home).runs(status="running")
        return len(running) == 1 and (home / running["run_dir"].iloc[0] / "last.pt").exists()

    while not checkpointed():
        assert process.poll() is None and time.time() < deadline, process.stdout.read()
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    interrupted = store(home).runs(status="interrupted")
    assert len(interrupted) == 1 and "SIGTERM" in interrupted["error"].iloc[0]
    resumed = harness(home, *args)
    assert "resumed at step" in resumed.stdout + resumed.stderr
    assert store(home).runs(status="succeeded")["seed"].tolist().count(7) == 1


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
