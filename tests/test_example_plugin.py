"""The example third-party package installs with pip and runs through a protocol like a builtin."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "harness-vanilla-pointnet"


def test_example_plugin_installs_and_runs_through_reconstruction(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]),
           "HARNESS_HOME": str(tmp_path / "home"), "CI": "true"}

    def harness(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert "vanilla_pointnet" in harness("plugins")
    assert "vanilla_pointnet + occupancy" in harness("list")
    out = harness("run", "protocol=reconstruction", "encoder=vanilla_pointnet", "decoder=occupancy", "profile=smoke",
                  "encoder.code_size=8")
    assert "succeeded" in out
    # the contract suite a plugin runs on itself: its module, its encoder's config, build and encoding checked (4);
    # the protocol/compressor, decoder and dataset checks have nothing of this plugin to check (3 skipped)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    summary = tests.stdout.strip().splitlines()[-1]
    assert re.match(r"4 passed, 3 skipped in ", summary), summary
