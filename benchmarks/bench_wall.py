"""Wall time of the main job, `harness bench` (quick profile, everything registered; target <= 15 min on 2 cores).

Runs in a fresh HARNESS_HOME so nothing is skipped and the dataset cache is generated too; the
leaderboards go to a scratch folder. Prints, writes benchmarks/results/bench_wall.json.

Run: .venv/bin/python benchmarks/bench_wall.py [--profile quick] [--seeds 1]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import save


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HARNESS_HOME": home, "CI": "true"}
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--profile", args.profile,
                                 "--seeds", str(args.seeds), "--out", str(Path(home) / "leaderboards")], env=env)
        wall = time.perf_counter() - start
    figures = {"profile": args.profile, "seeds": args.seeds, "wall_s": wall, "exit_code": result.returncode}
    print(f"harness bench --profile {args.profile} --seeds {args.seeds}: {wall:.0f} s (exit {result.returncode})")
    save("bench_wall", figures)


if __name__ == "__main__":
    main()
