"""Trained weights are stored once per recipe, reused by identical trainings, and retrained when damaged."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.config import compose_config, register_configs
from harness.registry import default_registry
from harness.runner import execute

RUN = ["protocol=classification", "decoder=classifier", "profile=smoke", "force=true"]


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    registry = default_registry()
    register_configs(registry)
    return lambda *overrides: execute(compose_config([*RUN, *overrides]), registry)


def entries(*seeds: int) -> list[Path]:
    """The records of cached trainings with these seeds (seeds no other test uses)."""
    records = Path(os.environ["HARNESS_CACHE"]).glob("trained/*/record.json")
    return sorted(r for r in records if json.loads(r.read_text())["recipe"].get("seed") in seeds)


def test_one_entry_per_recipe_reused_and_rebuilt_when_damaged(run, tmp_path, caplog):
    first = run("seed=1003")
    assert len(entries(1003)) == 1
    record = json.loads(entries(1003)[0].read_text())
    assert record["recipe"]["trainer"][0] == "classification"
    run_dir = next((tmp_path / "runs").iterdir())
    assert (run_dir / "best.pt").exists()  # trained here, with the run's own checkpoints

    caplog.set_level("INFO")
    again = run("seed=1003")
    assert "reusing trained weights" in caplog.text
    assert again.metrics == first.metrics
    assert len(entries(1003)) == 1

    run("seed=1004")  # another recipe, another entry
    assert len(entries(1003, 1004)) == 2

    weights = entries(1003)[0].parent / "model.pt"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated: its checksum no longer matches
    caplog.clear()
    rebuilt = run("seed=1003")
    assert "unusable" in caplog.text and "retraining" in caplog.text
    assert rebuilt.status == "succeeded" and len(entries(1003)) == 1
    assert rebuilt.metrics == first.metrics  # the same recipe trains to the same weights
